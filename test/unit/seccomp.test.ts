import { describe, expect, it } from 'vitest'
import {
  AUDIT_ARCH, DENIED_CALLS, ENOSYS, EPERM, noSeccompWarning, sandboxSeccomp, seccompArchOf, seccompProgram,
  SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SYSCALL_NUMBERS, type SeccompArch
} from '../../src/sandbox/seccomp.js'

/** AUDIT_ARCH_I386 and AUDIT_ARCH_ARM (include/uapi/linux/audit.h): the compat entries of the two architectures. */
const AUDIT_ARCH_I386 = 0x40000003
const AUDIT_ARCH_ARM = 0x40000028

interface Call { arch: number, nr: number, args?: bigint[] }

/**
 * A classic BPF interpreter for what a seccomp program may contain, run on
 * the bytes bwrap would read: the program is decoded from its `struct
 * sock_filter` array, not taken from the generator's objects, and every
 * instruction it meets must be one the kernel's seccomp checker accepts.
 */
function run (program: Buffer, call: Call): number {
  expect(program.length % 8).toBe(0)
  const count = program.length / 8
  expect(count).toBeLessThanOrEqual(4096)
  // struct seccomp_data, little-endian: nr, arch, instruction_pointer, args[6].
  const data = Buffer.alloc(64)
  data.writeInt32LE(call.nr | 0, 0)
  data.writeUInt32LE(call.arch >>> 0, 4)
  ;(call.args ?? []).forEach((arg, i) => { data.writeBigUInt64LE(BigInt.asUintN(64, arg), 16 + 8 * i) })
  let acc = 0
  let pc = 0
  for (let steps = 0; steps <= count; steps++) {
    expect(pc).toBeLessThan(count)
    const code = program.readUInt16LE(pc * 8)
    const jt = program.readUInt8(pc * 8 + 2)
    const jf = program.readUInt8(pc * 8 + 3)
    const k = program.readUInt32LE(pc * 8 + 4)
    switch (code) {
      case 0x20: // ld [k]: a 32-bit word of seccomp_data, aligned
        expect(k % 4).toBe(0)
        expect(k).toBeLessThan(64)
        acc = data.readUInt32LE(k)
        pc++
        break
      case 0x15: pc += 1 + (acc === k ? jt : jf); break // jeq #k
      case 0x35: pc += 1 + (acc >= k ? jt : jf); break // jge #k (unsigned)
      case 0x45: pc += 1 + ((acc & k) !== 0 ? jt : jf); break // jset #k
      case 0x06: return k // ret #k
      default: throw new Error(`instruction ${pc}: opcode 0x${code.toString(16)} is not expected in the filter`)
    }
  }
  throw new Error('the program did not return (only forward jumps should exist)')
}

const errno = (n: number): number => (SECCOMP_RET_ERRNO | n) >>> 0

describe('the seccomp program (src/sandbox/seccomp.ts)', () => {
  for (const arch of ['x86_64', 'aarch64'] as SeccompArch[]) {
    const program = seccompProgram(arch)
    const nr = SYSCALL_NUMBERS[arch]
    const native = AUDIT_ARCH[arch]

    describe(arch, () => {
      it('refuses every denied call the architecture has, with its errno', () => {
        let checked = 0
        for (const denied of DENIED_CALLS) {
          const number = nr[denied.name]
          if (number === undefined) continue
          checked++
          expect(run(program, { arch: native, nr: number }), denied.name).toBe(errno(denied.errno))
        }
        expect(checked).toBeGreaterThan(40)
        expect(run(program, { arch: native, nr: nr.keyctl! })).toBe(errno(EPERM))
        expect(run(program, { arch: native, nr: nr.io_uring_setup! })).toBe(errno(ENOSYS))
        expect(run(program, { arch: native, nr: nr.clone3! })).toBe(errno(ENOSYS))
      })

      it('allows what builds use: getpid, ptrace, read/write/openat/execve, numbers it does not know', () => {
        // read, write, openat, execve: x86_64 0, 1, 257, 59; aarch64 63, 64, 56, 221.
        const common = arch === 'x86_64' ? [0, 1, 257, 59] : [63, 64, 56, 221]
        for (const number of [nr.getpid!, nr.ptrace!, ...common, 999, 0xffffffff]) {
          expect(run(program, { arch: native, nr: number }), String(number)).toBe(SECCOMP_RET_ALLOW)
        }
      })

      it('refuses clone with a namespace flag, and allows it without (fork, threads)', () => {
        const clone = nr.clone!
        // SIGCHLD (fork), and glibc's pthread_create flags (VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID).
        for (const flags of [0x11n, 0x3d0f00n]) expect(run(program, { arch: native, nr: clone, args: [flags] })).toBe(SECCOMP_RET_ALLOW)
        for (const flag of [0x00020000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
          expect(run(program, { arch: native, nr: clone, args: [flag | 0x11n] }), flag.toString(16)).toBe(errno(EPERM))
        }
        // The high half of the 64-bit flags holds no namespace flag: it does not matter.
        expect(run(program, { arch: native, nr: clone, args: [0xffffffff00000011n] })).toBe(SECCOMP_RET_ALLOW)
      })

      it('kills a process calling through another architecture\'s entry, whatever the number', () => {
        const foreign = arch === 'x86_64' ? AUDIT_ARCH_I386 : AUDIT_ARCH_ARM
        for (const number of [0, 20, nr.getpid!, 999]) {
          expect(run(program, { arch: foreign, nr: number })).toBe(SECCOMP_RET_KILL_PROCESS)
        }
        const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64
        expect(run(program, { arch: other, nr: 0 })).toBe(SECCOMP_RET_KILL_PROCESS)
      })
    })
  }

  it('x86_64: kills x32 numbers (bit 30), allowed or denied in the 64-bit table alike; -1 (no call) is not x32', () => {
    const program = seccompProgram('x86_64')
    const native = AUDIT_ARCH.x86_64
    for (const number of [0, 39, SYSCALL_NUMBERS.x86_64.keyctl!, 0x1ff]) {
      expect(run(program, { arch: native, nr: 0x40000000 | number })).toBe(SECCOMP_RET_KILL_PROCESS)
    }
    expect(run(program, { arch: native, nr: 0x7fffffff })).toBe(SECCOMP_RET_KILL_PROCESS)
    expect(run(program, { arch: native, nr: -1 })).toBe(SECCOMP_RET_ALLOW)
  })

  it('is the same bytes every time (made once per node; any change is a new policy version)', () => {
    expect(seccompProgram('x86_64').equals(seccompProgram('x86_64'))).toBe(true)
    expect(seccompProgram('x86_64').equals(seccompProgram('aarch64'))).toBe(false)
  })

  it('is made for x64 and arm64 only, and says why there is none', () => {
    expect(seccompArchOf('x64')).toBe('x86_64')
    expect(seccompArchOf('arm64')).toBe('aarch64')
    expect(seccompArchOf('riscv64')).toBeUndefined()
    const none = sandboxSeccomp(true, 'riscv64')
    expect(none).toEqual({ missing: expect.stringContaining('riscv64') })
    expect(sandboxSeccomp(false, 'x64')).toEqual({ missing: 'this bubblewrap has no --seccomp option' })
    const made = sandboxSeccomp(true, 'x64')
    expect('program' in made && made.label).toBe('buildhaus-1 x86_64')
    expect(noSeccompWarning('why')).toContain('no seccomp filter (why)')
  })
})
