// /v1/system and /metrics: what the service runs on, and numbers for Prometheus.
import { z } from 'zod';
import type { RequestHistogram } from '../metrics.js';
import { renderMetrics } from '../metrics.js';
import type { Routes } from '../route.js';
import { ReconcileReportSchema, type Service } from '../service.js';
import { EmptyQuerySchema } from '../schemas.js';
import { SCHEMA_VERSION } from '../db.js';

export const SystemSchema = z.object({
  kernel: z.string(),
  kni: z.object({
    loaded: z.boolean(),
    abiVersion: z.number().int().optional(),
    kthreadMode: z.enum(['single', 'multiple']).optional(),
    error: z.string().optional(),
    parameters: z.record(z.string(), z.string()).describe('/sys/module/kni/parameters'),
  }),
  kvm: z.boolean().describe('KVM usable: /dev/kvm opens and the CPU has vmx or svm'),
  vhostNet: z.boolean(),
  qemu: z.object({ available: z.boolean(), version: z.string().nullable() }),
  versions: z.object({ kniv: z.string(), node: z.string(), database: z.number().int() }),
  stateDir: z.string(),
  tokenFile: z.string(),
  reconcile: ReconcileReportSchema.nullable().describe('what the service did when it started'),
});

export function systemRoutes(r: Routes, service: Service, version: string, requests: RequestHistogram): void {
  r.add({
    method: 'GET',
    url: '/v1/system',
    tag: 'system',
    summary: 'Kernel, kni.ko and its parameters, KVM and vhost-net, qemu, versions, the last reconciliation',
    query: EmptyQuerySchema,
    response: SystemSchema,
    handler: async () => ({
      ...service.drivers.probe(),
      versions: { kniv: version, node: process.version, database: SCHEMA_VERSION },
      stateDir: service.paths.dir,
      tokenFile: service.paths.token,
      reconcile: service.reconcileReport ?? null,
    }),
  });
  r.add({
    method: 'GET',
    url: '/metrics',
    tag: 'system',
    summary: 'Prometheus text: interface counters, VM states, request latencies (bearer token required)',
    produces: 'text/plain; version=0.0.4',
    handler: async (_req, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return renderMetrics(service, requests);
    },
  });
}
