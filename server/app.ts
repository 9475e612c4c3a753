// The kniv service, built by a function so that tests can inject() into it.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import { SystemFactsSchema, type SystemFacts } from './system.js';

export const HealthSchema = SystemFactsSchema.extend({ status: z.literal('ok') });
export type Health = z.infer<typeof HealthSchema>;

export interface AppConfig {
  logger?: FastifyServerOptions['logger'];
}

export interface AppDeps {
  system: () => SystemFacts;
}

export function buildApp(config: AppConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({ logger: config.logger ?? false, bodyLimit: 64 * 1024 });
  app.get('/health', async (): Promise<Health> => HealthSchema.parse({ status: 'ok', ...deps.system() }));
  return app;
}
