// Test fixtures: the real `assay` binary on 127.0.0.1 and a real HTTP application under test.
// The binary is ASSAY_BIN, or target/debug/assay of this repository (scripts/test builds it).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const ROOT = resolve(import.meta.dirname, "../../../..");
const START_TIMEOUT_MS = 30_000;

/** A running `assay serve` on a fresh SQLite database. */
export class Assay {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(args: string[] = []): Promise<Assay> {
    const binary = process.env.ASSAY_BIN ?? join(ROOT, "target", "debug", "assay");
    if (!existsSync(binary)) {
      throw new Error(`${binary} missing: build it with \`cargo build --bin assay\``);
    }
    const dir = mkdtempSync(join(tmpdir(), "assay-ts-"));
    const port = await freePort();
    const log = join(dir, "serve.log");
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ASSAY_")));
    const child = spawn(
      binary,
      ["serve", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${join(dir, "assay.db")}`, ...args],
      { stdio: ["ignore", "ignore", openSync(log, "w")], env },
    );
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill();
        throw new Error(`assay did not start: ${readFileSync(log, "utf8")}`);
      }
      await sleep(50);
    }
    return new Assay(`http://127.0.0.1:${port}`, child);
  }

  async stop(): Promise<void> {
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    await exited;
  }
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as { port: number }).port;
  await new Promise((done) => server.close(done));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = tcpConnect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/** A tiny HTTP application: answers `{"answer": ...}` to `{"prompt": ...}`, counts its calls,
 * and holds the answer to a prompt in `gates` until that gate is opened. */
export class App {
  calls = 0;
  readonly gates = new Map<string, { opened: Promise<void>; open: () => void }>();
  private constructor(
    readonly url: string,
    private readonly server: Server,
  ) {}

  static async start(): Promise<App> {
    let app: App | undefined;
    const server = createServer(async (request, response) => {
      let body = "";
      for await (const chunk of request) body += chunk;
      const prompt: string = JSON.parse(body).prompt;
      app!.calls += 1;
      await app!.gates.get(prompt)?.opened;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ answer: prompt.includes("France") ? "Paris" : "Milan" }));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const port = (server.address() as { port: number }).port;
    app = new App(`http://127.0.0.1:${port}/ask`, server);
    return app;
  }

  /** Holds the answer to `prompt` until the returned function is called. */
  gate(prompt: string): () => void {
    let open = () => {};
    const opened = new Promise<void>((done) => (open = done));
    this.gates.set(prompt, { opened, open });
    return open;
  }

  async stop(): Promise<void> {
    for (const gate of this.gates.values()) gate.open();
    this.server.closeAllConnections();
    await new Promise((done) => this.server.close(done));
  }
}
