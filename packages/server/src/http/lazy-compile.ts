/**
 * Route schemas compiled on a route's first request instead of at start. Fastify compiles every
 * route's request validators (ajv) and response serializers (fast-json-stringify) when the app gets
 * ready; with ~80 routes that was the largest part of the server's cold start and of its idle memory,
 * for routes most deployments never call. Each compiled function is kept once made. A schema ajv cannot
 * compile now fails on its route's first request (a 500 in the API's error shape) rather than at start,
 * so every route's schema must be exercised by the tests.
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

type FastifyValidationResult = ReturnType<FastifySchemaCompiler<unknown>>;

/** What ajv's `compile` returns, as far as Fastify uses it (synchronous schemas only). */
interface AjvValidate {
  (data: unknown): boolean;
  errors?: unknown;
}

/** A validator that compiles on first use and mirrors the compiled one's `errors` (Fastify reads them). */
export function lazyValidator(compile: () => AjvValidate): FastifyValidationResult {
  let compiled: AjvValidate | undefined;
  const validate: FastifyValidationResult = (data: unknown) => {
    compiled ??= compile();
    const result = compiled(data);
    validate.errors = compiled.errors as FastifySchemaValidationError[] | null | undefined;
    return result;
  };
  validate.errors = null;
  return validate;
}

type SerializerFactory = ReturnType<typeof SerializerSelector>;

/** Fastify's own serializer factory (fast-json-stringify), with each route's serializer made on first use. */
export const lazySerializerFactory: SerializerFactory = (externalSchemas, options) => {
  const compile = SerializerSelector()(externalSchemas, options);
  return (routeSchema) => {
    let serialize: ((data: unknown) => string) | undefined;
    return (data: unknown) => {
      serialize ??= compile(routeSchema) as (data: unknown) => string;
      return serialize(data);
    };
  };
};
