/** What a command may touch: its output streams, environment and clock. main.ts builds the real one. */
export interface Io {
  readonly stdout: { write(chunk: string): unknown }
  readonly stderr: { write(chunk: string): unknown }
  readonly env: Readonly<Record<string, string | undefined>>
  readonly now: () => Date
  /** Asks a question on the terminal (stderr) and reads one line from stdin. */
  readonly prompt: (question: string) => Promise<string>
}
