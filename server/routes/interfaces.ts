// /v1/interfaces: KNI interfaces and their ports.
import type { Routes } from '../route.js';
import type { Service } from '../service.js';
import { EmptyQuerySchema, InterfaceCreateSchema, InterfacePatchSchema, InterfaceSchema, ListSchema, NameParamsSchema } from '../schemas.js';

export function interfaceRoutes(r: Routes, service: Service): void {
  const tag = 'interfaces';
  r.add({
    method: 'GET',
    url: '/v1/interfaces',
    tag,
    summary: 'List interfaces with their state and live counters',
    query: EmptyQuerySchema,
    response: ListSchema(InterfaceSchema),
    handler: async () => ({ items: service.interfaces.list() }),
  });
  r.add({
    method: 'POST',
    url: '/v1/interfaces',
    tag,
    summary: 'Create a KNI interface and its data plane',
    description: 'Creates the netdev in kni.ko, starts a data plane thread forwarding between it and the port, brings it up.',
    body: InterfaceCreateSchema,
    status: 201,
    response: InterfaceSchema,
    errors: ['name_in_use', 'limit_reached', 'module_unavailable', 'operation_failed'],
    handler: async ({ body }, reply) => {
      const created = await service.interfaces.create(body);
      reply.header('location', `/v1/interfaces/${created.name}`);
      return created;
    },
  });
  r.add({
    method: 'GET',
    url: '/v1/interfaces/:name',
    tag,
    summary: 'One interface: state, socket, live counters',
    params: NameParamsSchema,
    query: EmptyQuerySchema,
    response: InterfaceSchema,
    errors: ['not_found'],
    handler: async ({ params }) => service.interfaces.get(params.name),
  });
  r.add({
    method: 'PATCH',
    url: '/v1/interfaces/:name',
    tag,
    summary: 'Change what can change at runtime: MTU, MAC, up, carrier, VNET_HDR (while no VM holds the socket)',
    params: NameParamsSchema,
    body: InterfacePatchSchema,
    response: InterfaceSchema,
    errors: ['not_found', 'invalid_state', 'interface_in_use', 'unsupported', 'operation_failed'],
    handler: async ({ params, body }) => service.interfaces.patch(params.name, body),
  });
  r.add({
    method: 'DELETE',
    url: '/v1/interfaces/:name',
    tag,
    summary: 'Stop the data plane and remove the netdev',
    params: NameParamsSchema,
    status: 204,
    errors: ['not_found', 'interface_in_use'],
    handler: async ({ params }) => service.interfaces.delete(params.name),
  });
}
