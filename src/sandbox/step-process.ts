import { spawn, type ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import { delay } from '../util/wait.js'
import { descendants, isRunning, readProcess, readProcessTable } from './proc.js'

/**
 * The shell that starts every step, as the node's user: it joins the run's
 * cgroups (each file given before `--` gets its pid, before anything forks),
 * merges stderr into stdout so the log keeps their order, and execs the rest.
 */
export const OUTER_WRAPPER = 'exec 2>&1; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'

/**
 * The shell that runs a step's command once the sandbox is set up: it writes
 * one byte on fd 3, which tells the node the sandbox started (so a bwrap
 * failure is never mistaken for a failing build), closes fd 3, and execs
 * `sh -c <run>`.
 */
export const INNER_WRAPPER = 'printf . >&3 && exec 3>&- && exec /bin/sh -c "$1"'

export interface StepProcessOptions {
  cwd: string
  env: Record<string, string>
  /**
   * The members of the step's cgroup: when given, they are all there is to
   * kill (the step joins the group before it forks anything), and no scan of
   * /proc is needed.
   */
  cgroupPids?: () => Promise<number[]>
}

export interface StepExit { code: number | null, signal: NodeJS.Signals | null }

/** One running step: its merged output, whether its sandbox started, its exit, and a kill for its whole tree. */
export class StepProcess {
  readonly child: ChildProcess
  readonly output: Readable
  /** Resolves true once the step's command is about to start, false if it never did. */
  readonly started: Promise<boolean>
  readonly exited: Promise<StepExit>
  /** Set when the process could not even be spawned. */
  spawnError: Error | undefined
  private readonly seen = new Map<number, number>()
  private readonly cgroupPids: (() => Promise<number[]>) | undefined

  constructor (argv: string[], options: StepProcessOptions) {
    this.cgroupPids = options.cgroupPids
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      // Its own process group and session: signals to the node's terminal do not reach it, and the group can be killed whole.
      detached: true
    })
    this.output = this.child.stdout!
    const marker = this.child.stdio[3] as Readable
    this.started = new Promise((resolve) => {
      marker.once('data', () => { resolve(true) })
      marker.once('close', () => { resolve(false) })
      marker.once('error', () => { resolve(false) })
    })
    marker.resume()
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => { resolve({ code, signal }) })
      this.child.once('error', (err) => {
        this.spawnError = err
        resolve({ code: null, signal: null })
      })
    })
  }

  get pid (): number | undefined { return this.child.pid }

  /**
   * SIGKILL the step and everything it started that is still attached to it
   * (and to its cgroup), then wait until all of them have stopped running.
   * Processes are named by pid and start time, so a recycled pid is never hit.
   */
  async kill (timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      await this.remember()
      let running = 0
      for (const [pid, startTime] of this.seen) {
        const info = await readProcess(pid)
        if (!isRunning(info) || info!.startTime !== startTime) {
          this.seen.delete(pid)
          continue
        }
        running++
        try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
      }
      if (running === 0) return true
      if (Date.now() > deadline) return false
      await delay(20)
    }
  }

  /** Add the step's processes to those to kill: its cgroup's members, or its tree, group and session as /proc shows them. */
  private async remember (): Promise<void> {
    const leader = this.child.pid
    if (this.cgroupPids !== undefined) {
      for (const pid of [...(leader === undefined ? [] : [leader]), ...await this.cgroupPids().catch(() => [])]) {
        const info = await readProcess(pid)
        if (info !== undefined && !this.seen.has(pid)) this.seen.set(pid, info.startTime)
      }
      return
    }
    const table = await readProcessTable()
    const roots: number[] = leader === undefined ? [] : [leader]
    for (const [pid, startTime] of this.seen) if (table.get(pid)?.startTime === startTime) roots.push(pid)
    for (const root of roots) {
      for (const info of descendants(table, root)) this.seen.set(info.pid, info.startTime)
    }
    // Orphans that kept the step's group or session (a group id is not reused while it has members).
    if (leader !== undefined) {
      for (const info of table.values()) if (info.pgrp === leader || info.session === leader) this.seen.set(info.pid, info.startTime)
    }
  }
}
