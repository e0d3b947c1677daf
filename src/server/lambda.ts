import awsLambdaFastify, { type LambdaResponse, type PromiseHandler } from "@fastify/aws-lambda";
import type { FastifyInstance } from "fastify";
import { type Config, loadConfig } from "../config.js";
import { createLogger, type Logger } from "../log.js";
import { buildApp } from "./app.js";
import { ApiKeys } from "./auth.js";
import { loadPair, ModelHolder } from "./models.js";

/** What API Gateway (REST API, payload 1.0; HTTP API, payload 2.0), an ALB or a function URL hands the function. */
export type LambdaEvent = Record<string, unknown>;
export type LambdaContext = Parameters<PromiseHandler>[1];

export interface LambdaApp {
  app: FastifyInstance;
  handle: PromiseHandler<LambdaEvent, LambdaResponse>;
}

/**
 * The prediction API as an AWS Lambda function: the same Fastify app as `churnops serve` (routes, schemas, API
 * keys, errors), driven by @fastify/aws-lambda. The models are resolved, downloaded and verified once per execution
 * environment (the cold start) and serve every invocation after it. There is no prediction log: a frozen
 * environment cannot flush it on a timer, so predictions are not written to the store from Lambda; use the
 * container or Kubernetes deployment where that log matters. Reloading is off: a new model is a new deployment
 * (or the next cold start, when the model reference is an MLflow alias).
 */
export async function createLambdaApp(config: Config, deps: { keys: ApiKeys; log: Logger }): Promise<LambdaApp> {
  const refs = { champion: config.server.model, challenger: config.server.challenger };
  const models = new ModelHolder(await loadPair(config, refs, { fresh: false }), config.server.unknown_fields);
  const app = await buildApp({ config: config.server, models, store: null, log: deps.log, keys: deps.keys, loadModels: null });
  return { app, handle: awsLambdaFastify<LambdaEvent>(app, { decorateRequest: false, serializeLambdaArguments: false }) };
}

let ready: Promise<LambdaApp> | null = null;

/**
 * The function's entry point (`dist/server/lambda.handler`). Config as everywhere: CHURNOPS_CONFIG (a TOML file
 * in the image) and the environment (CHURNOPS_API_KEYS, MLFLOW_TRACKING_URI, CHURNOPS_HOME under /tmp).
 * A failed start is not cached: the next invocation tries again.
 */
export async function handler(event: LambdaEvent, context: LambdaContext): Promise<LambdaResponse> {
  ready ??= createLambdaApp(loadConfig(), { keys: ApiKeys.fromEnv(process.env), log: createLogger({ runtime: "lambda" }) }).catch((err: unknown) => {
    ready = null;
    throw err;
  });
  return (await ready).handle(event, context);
}
