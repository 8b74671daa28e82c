// Errors of the Assay API: the gRPC status code, the server's message and its google.rpc error
// details (BadRequest naming the field, ResourceInfo, PreconditionFailure, ...).

import { createRegistry, type DescMessage, type Message, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, file_google_rpc_error_details } from "./rpc/google/rpc/error_details_pb.js";

const details = createRegistry(file_google_rpc_error_details);

/** A call the server refused or that failed. */
export class AssayError extends Error {
  /** The gRPC status code (`Code.InvalidArgument`, `Code.NotFound`, ...). */
  readonly code: Code;
  /** The server's message, without the code in front. */
  readonly rawMessage: string;
  /** The decoded google.rpc error details; details of unknown types are left out. */
  readonly details: Message[];

  constructor(code: Code, rawMessage: string, errorDetails: Message[]) {
    super(`${Code[code]}: ${rawMessage}`);
    this.name = "AssayError";
    this.code = code;
    this.rawMessage = rawMessage;
    this.details = errorDetails;
  }

  /** The first detail of that type, e.g. `error.detail(ResourceInfoSchema)`. */
  detail<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> | undefined {
    return this.details.find((d) => d.$typeName === schema.typeName) as MessageShape<Desc> | undefined;
  }

  /** Field path -> what is wrong with it, from the `BadRequest` detail (empty if none). */
  get fieldViolations(): Record<string, string> {
    const violations = this.detail(BadRequestSchema)?.fieldViolations ?? [];
    return Object.fromEntries(violations.map((v) => [v.field, v.description]));
  }

  /** Converts what a Connect client threw (anything else is wrapped as `Code.Unknown`). */
  static from(error: unknown): AssayError {
    const connect = ConnectError.from(error);
    return new AssayError(connect.code, connect.rawMessage, connect.findDetails(details));
  }
}

/** Runs a call and throws its failure as an `AssayError`. */
export async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw AssayError.from(error);
  }
}

/** The messages of a server stream, its failure thrown as an `AssayError`. */
export async function* stream<T>(messages: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw AssayError.from(error);
  }
}
