// /v1/benchmarks: guest↔host throughput runs and their history.
import type { Routes } from '../route.js';
import type { Service } from '../service.js';
import { BenchCreateSchema, BenchmarkSchema, EmptyQuerySchema, IdParamsSchema, ListSchema } from '../schemas.js';

export function benchmarkRoutes(r: Routes, service: Service): void {
  const tag = 'benchmarks';
  r.add({
    method: 'GET',
    url: '/v1/benchmarks',
    tag,
    summary: 'Past and running benchmarks, newest first',
    query: EmptyQuerySchema,
    response: ListSchema(BenchmarkSchema),
    handler: async () => ({ items: service.benchmarks.list() }),
  });
  r.add({
    method: 'POST',
    url: '/v1/benchmarks',
    tag,
    summary: 'Start a guest↔host throughput run; answers at once (poll it or follow benchmark.* events)',
    body: BenchCreateSchema,
    status: 202,
    response: BenchmarkSchema,
    errors: ['benchmark_running', 'benchmark_unavailable', 'not_found', 'invalid_state', 'interface_in_use', 'unsupported', 'operation_failed'],
    handler: async ({ body }, reply) => {
      const b = await service.benchmarks.start(body);
      reply.header('location', `/v1/benchmarks/${b.id}`);
      return b;
    },
  });
  r.add({
    method: 'GET',
    url: '/v1/benchmarks/:id',
    tag,
    summary: 'One benchmark: progress while it runs, the result after',
    params: IdParamsSchema,
    query: EmptyQuerySchema,
    response: BenchmarkSchema,
    errors: ['not_found'],
    handler: async ({ params }) => service.benchmarks.get(params.id),
  });
}
