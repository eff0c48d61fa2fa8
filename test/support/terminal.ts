// A real terminal for tests of interactive commands: tmux runs the command in a pseudo-terminal,
// the test reads the screen and types keys, as a person at a terminal would. The tmux server runs
// on a private socket, so it never touches the user's own sessions.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir, tool } from './cli.js'

export const TMUX = tool('tmux')

const EXITED = 'KIA_TERMINAL_EXIT_STATUS'

export interface Terminal {
  /** What the terminal shows, scrollback included, trailing blank lines removed. */
  screen(): Promise<string>
  /** Waits (bounded) until the screen matches, and returns it. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Types text, then presses Enter when `enter` is set. */
  type(text: string, opts?: { enter?: boolean }): Promise<void>
  /** Waits (bounded) for the command to end; its exit status. */
  exitCode(timeoutMs?: number): Promise<number>
  close(): Promise<void>
}

function tmux(socket: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tmux', ['-S', socket, ...args], { timeout: 10_000 }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`tmux ${args[0]} failed: ${err.message}\n${stderr}`)),
    )
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts `argv` in a new 200x50 terminal with exactly `env` as its environment. */
export async function startTerminal(argv: readonly string[], opts: { env: Record<string, string>; cwd: string }) {
  const dir = tempDir('kia-tmux-')
  const socket = join(dir, 'sock')
  const conf = join(dir, 'tmux.conf')
  // The pane stays after the command exits, so its exit status can be read.
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g history-limit 2000\n')
  const envArgs = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`)
  await tmux(socket, [
    '-f',
    conf,
    'new-session',
    '-d',
    '-s',
    'test',
    '-x',
    '200',
    '-y',
    '50',
    '-c',
    opts.cwd,
    '--',
    'env',
    '-i',
    ...envArgs,
    // The shell reports the command's exit status on the screen: tmux's own pane_dead_status is not
    // always set when the terminal closes before the process is reaped.
    'sh',
    '-c',
    `"$@"; echo "${EXITED} $?"`,
    'sh',
    ...argv,
  ])
  const capture = () => tmux(socket, ['capture-pane', '-p', '-S', '-', '-t', 'test'])
  const terminal: Terminal = {
    screen: async () => (await capture()).replace(new RegExp(`\\n?${EXITED} \\d+[\\s\\S]*$`), '').replace(/\n+$/, ''),
    async waitFor(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const screen = await terminal.screen()
        if (pattern.test(screen)) return screen
        if (Date.now() > deadline) throw new Error(`terminal never showed ${pattern}; screen:\n${screen}`)
        await sleep(50)
      }
    },
    async type(text, o = {}) {
      if (text !== '') await tmux(socket, ['send-keys', '-t', 'test', '-l', text])
      if (o.enter) await tmux(socket, ['send-keys', '-t', 'test', 'Enter'])
    },
    async exitCode(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const exited = new RegExp(`^${EXITED} (\\d+)$`, 'm').exec(await capture())
        if (exited !== null) return Number(exited[1])
        if (Date.now() > deadline) throw new Error(`the command is still running; screen:\n${await terminal.screen()}`)
        await sleep(50)
      }
    },
    close: async () => {
      await tmux(socket, ['kill-server']).catch(() => undefined)
    },
  }
  return terminal
}
