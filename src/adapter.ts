/** What the composition root needs from every protocol adapter. */
export interface ProtocolAdapter {
  readonly name: string;
  start(): Promise<void>;
  /** Stops accepting, ends every client of this protocol (sessions close with history rows). */
  stop(): Promise<void>;
  /** The bound address once started (port 0 in tests becomes the real port). */
  address(): { host: string; port: number } | undefined;
}
