// /v1/vms: guests wired to interfaces, with state-gated actions.
import type { Routes } from '../route.js';
import type { Service } from '../service.js';
import { ConsoleQuerySchema, EmptyQuerySchema, ListSchema, NameParamsSchema, VmCreateSchema, VmSchema, VmStopSchema } from '../schemas.js';

export function vmRoutes(r: Routes, service: Service): void {
  const tag = 'vms';
  const accepted = (name: string, reply: { header(k: string, v: string): unknown }) => reply.header('location', `/v1/vms/${name}`);
  r.add({
    method: 'GET',
    url: '/v1/vms',
    tag,
    summary: 'List VMs',
    query: EmptyQuerySchema,
    response: ListSchema(VmSchema),
    handler: async () => ({ items: service.vms.list() }),
  });
  r.add({
    method: 'POST',
    url: '/v1/vms',
    tag,
    summary: 'Define a VM from a spec (it is not started)',
    body: VmCreateSchema,
    status: 201,
    response: VmSchema,
    errors: ['name_in_use', 'limit_reached'],
    handler: async ({ body }, reply) => {
      const vm = await service.vms.create(body);
      reply.header('location', `/v1/vms/${vm.name}`);
      return vm;
    },
  });
  r.add({
    method: 'GET',
    url: '/v1/vms/:name',
    tag,
    summary: "One VM: state, pid, qemu's run status",
    params: NameParamsSchema,
    query: EmptyQuerySchema,
    response: VmSchema,
    errors: ['not_found'],
    handler: async ({ params }) => service.vms.get(params.name),
  });
  r.add({
    method: 'POST',
    url: '/v1/vms/:name/start',
    tag,
    summary: 'Start qemu; answers at once with the VM starting (poll it or follow vm.state events)',
    params: NameParamsSchema,
    status: 202,
    response: VmSchema,
    errors: ['not_found', 'invalid_state', 'interface_in_use', 'qemu_unavailable', 'unsupported'],
    handler: async ({ params }, reply) => {
      accepted(params.name, reply);
      return service.vms.start(params.name);
    },
  });
  r.add({
    method: 'POST',
    url: '/v1/vms/:name/stop',
    tag,
    summary: 'Stop: QMP quit, then SIGTERM, then SIGKILL ({"force": true} skips the quit); answers at once with the VM stopping',
    params: NameParamsSchema,
    body: VmStopSchema,
    status: 202,
    response: VmSchema,
    errors: ['not_found', 'invalid_state'],
    handler: async ({ params, body }, reply) => {
      accepted(params.name, reply);
      return service.vms.stop(params.name, body.force);
    },
  });
  r.add({
    method: 'POST',
    url: '/v1/vms/:name/reboot',
    tag,
    summary: 'Reset the running VM (QMP system_reset)',
    params: NameParamsSchema,
    response: VmSchema,
    errors: ['not_found', 'invalid_state', 'operation_failed'],
    handler: async ({ params }) => service.vms.reboot(params.name),
  });
  r.add({
    method: 'GET',
    url: '/v1/vms/:name/console',
    tag,
    summary: "The end of the VM's serial console log (text/plain)",
    params: NameParamsSchema,
    query: ConsoleQuerySchema,
    produces: 'text/plain',
    errors: ['not_found'],
    handler: async ({ params, query }, reply) => {
      reply.type('text/plain; charset=utf-8');
      return service.vms.console(params.name, query.bytes);
    },
  });
  r.add({
    method: 'DELETE',
    url: '/v1/vms/:name',
    tag,
    summary: 'Delete a VM that is not running, with its run directory',
    params: NameParamsSchema,
    status: 204,
    errors: ['not_found', 'invalid_state'],
    handler: async ({ params }) => service.vms.delete(params.name),
  });
}
