/**
 * The seccomp filter every sandbox loads (bwrap's `--seccomp FD`): a classic
 * BPF program, made here once per node, that stops the system calls a build
 * has no business making before they reach the host's kernel. A deny list in
 * the spirit of the container runtimes' default profiles; docs/SANDBOX.md,
 * "The system call filter", says what is denied and why.
 *
 * The program, in order:
 * 1. the architecture: anything but the node's own (on x86_64, the i386
 *    compat entry `int 0x80`; on aarch64, arm32) kills the process;
 * 2. on x86_64, x32 numbers (bit 30 set, `__X32_SYSCALL_BIT`) kill the
 *    process (the same kernel code under other numbers: a way around a list);
 * 3. each denied number returns its errno (EPERM, or ENOSYS where callers
 *    fall back to an older call or to doing without);
 * 4. `clone` with any namespace flag returns EPERM;
 * 5. everything else is allowed.
 *
 * Steps 1–3 and 5 read only the architecture and the number, so the kernel
 * (≥ 5.11) caches the verdict of every allowed call but `clone` and runs no
 * filter for them at all.
 */

/** The architectures a filter is made for, by the kernel's names. */
export type SeccompArch = 'x86_64' | 'aarch64'

/** Which filter, for the run's record: its policy version and architecture. */
export const SECCOMP_POLICY = 'buildhaus-1'

/**
 * AUDIT_ARCH_* (include/uapi/linux/audit.h): the ELF machine (EM_X86_64 = 62,
 * EM_AARCH64 = 183) | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000).
 */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = Object.freeze({
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7
})

/** x86_64's x32 ABI: its system call numbers have this bit set (arch/x86/include/uapi/asm/unistd.h). */
export const X32_SYSCALL_BIT = 0x40000000

/** The namespace flags of clone(2) (include/uapi/linux/sched.h): NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

/** errno values (include/uapi/asm-generic/errno-base.h, errno.h): the same on both architectures. */
export const EPERM = 1
export const ENOSYS = 38

/** Return values of a seccomp filter (include/uapi/linux/seccomp.h). */
export const SECCOMP_RET_KILL_PROCESS = 0x80000000
export const SECCOMP_RET_ERRNO = 0x00050000
export const SECCOMP_RET_ALLOW = 0x7fff0000

/** Offsets in `struct seccomp_data` (include/uapi/linux/seccomp.h): nr, arch, then instruction_pointer, args[6]. */
const DATA_NR = 0
const DATA_ARCH = 4
/** The low 32 bits of args[0] on a little-endian machine (both architectures here). */
const DATA_ARG0_LOW = 16

/**
 * System call numbers, as facts from the kernel's tables: x86_64 from
 * arch/x86/entry/syscalls/syscall_64.tbl, aarch64 from the generic table
 * (include/uapi/asm-generic/unistd.h; scripts/syscall.tbl since 6.11).
 * Calls an architecture does not have are absent from its table. Numbers
 * from 424 up are the same on every architecture.
 */
export const SYSCALL_NUMBERS: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = Object.freeze({
  x86_64: Object.freeze({
    getpid: 39,
    clone: 56,
    ptrace: 101,
    syslog: 103,
    uselib: 134,
    ustat: 136,
    sysfs: 139,
    modify_ldt: 154,
    pivot_root: 155,
    _sysctl: 156,
    acct: 163,
    settimeofday: 164,
    mount: 165,
    umount2: 166,
    swapon: 167,
    swapoff: 168,
    reboot: 169,
    iopl: 172,
    ioperm: 173,
    create_module: 174,
    init_module: 175,
    delete_module: 176,
    get_kernel_syms: 177,
    query_module: 178,
    quotactl: 179,
    nfsservctl: 180,
    lookup_dcookie: 212,
    clock_settime: 227,
    kexec_load: 246,
    add_key: 248,
    request_key: 249,
    keyctl: 250,
    unshare: 272,
    perf_event_open: 298,
    fanotify_init: 300,
    open_by_handle_at: 304,
    clock_adjtime: 305,
    setns: 308,
    kcmp: 312,
    finit_module: 313,
    kexec_file_load: 320,
    bpf: 321,
    userfaultfd: 323,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    clone3: 435,
    mount_setattr: 442,
    quotactl_fd: 443,
    open_tree_attr: 467
  }),
  aarch64: Object.freeze({
    lookup_dcookie: 18,
    umount2: 39,
    mount: 40,
    pivot_root: 41,
    nfsservctl: 42,
    quotactl: 60,
    acct: 89,
    unshare: 97,
    kexec_load: 104,
    init_module: 105,
    delete_module: 106,
    clock_settime: 112,
    syslog: 116,
    ptrace: 117,
    reboot: 142,
    settimeofday: 170,
    getpid: 172,
    add_key: 217,
    request_key: 218,
    keyctl: 219,
    clone: 220,
    swapon: 224,
    swapoff: 225,
    perf_event_open: 241,
    fanotify_init: 262,
    open_by_handle_at: 265,
    clock_adjtime: 266,
    setns: 268,
    kcmp: 272,
    finit_module: 273,
    bpf: 280,
    userfaultfd: 282,
    kexec_file_load: 294,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    clone3: 435,
    mount_setattr: 442,
    quotactl_fd: 443,
    open_tree_attr: 467
  })
})

export interface DeniedCall {
  name: string
  errno: number
  /** Why a build is better off without it (docs/SANDBOX.md repeats these). */
  why: string
}

const group = (names: string[], errno: number, why: string): DeniedCall[] => names.map((name) => ({ name, errno, why }))

/**
 * What the filter refuses, and with which errno. None of these is needed to
 * build software; most are already refused for lack of capabilities, and
 * the filter keeps the kernel code behind them out of reach (a bug there is
 * an escape). ptrace, process_vm_*, personality and the NUMA calls stay
 * allowed (docs/SANDBOX.md says why).
 */
export const DENIED_CALLS: readonly DeniedCall[] = Object.freeze([
  ...group(['add_key', 'request_key', 'keyctl'], EPERM, 'the kernel keyrings are not isolated per sandbox, and their code has been a source of exploits'),
  ...group(['bpf'], EPERM, 'eBPF: the verifier is a large attack surface'),
  ...group(['userfaultfd'], EPERM, 'stalls kernel page faults at will: a standard tool for winning kernel races'),
  ...group(['perf_event_open'], EPERM, 'performance counters: a large attack surface, and side channels on the host'),
  ...group(['io_uring_setup', 'io_uring_enter', 'io_uring_register'], ENOSYS, 'io_uring: a large and young attack surface; its users fall back to ordinary calls when the kernel has none'),
  ...group(['kexec_load', 'kexec_file_load', 'reboot'], EPERM, 'loading or restarting a kernel'),
  ...group(['init_module', 'finit_module', 'delete_module', 'create_module', 'get_kernel_syms', 'query_module'], EPERM, 'kernel modules'),
  ...group(['open_by_handle_at'], EPERM, 'opens any file of a file system by its handle, around the mount tree (the "shocker" escape from containers)'),
  ...group(['mount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree', 'open_tree_attr', 'move_mount', 'mount_setattr'], EPERM, 'the mount tree is the sandbox; a build mounts nothing (the new mount API too)'),
  ...group(['unshare', 'setns'], EPERM, 'new namespaces, or joining others: nested namespaces expose more of the kernel (clone with namespace flags is refused too)'),
  ...group(['clone3'], ENOSYS, 'its flags are in memory a filter cannot read; glibc falls back to clone, whose flags the filter checks'),
  ...group(['swapon', 'swapoff', 'acct', 'quotactl', 'quotactl_fd', 'nfsservctl', 'syslog', 'lookup_dcookie', 'fanotify_init', 'kcmp', 'uselib', 'ustat', 'sysfs', '_sysctl'], EPERM, 'administration of the host, obsolete calls, or information about other processes and the kernel'),
  ...group(['settimeofday', 'clock_settime', 'clock_adjtime'], EPERM, 'the host\'s clock'),
  ...group(['iopl', 'ioperm', 'modify_ldt'], EPERM, 'x86 I/O ports and descriptor tables')
])

/** Classic BPF opcodes (include/uapi/linux/bpf_common.h, filter.h). */
const BPF_LD_W_ABS = 0x20
const BPF_JEQ_K = 0x15
const BPF_JGE_K = 0x35
const BPF_JSET_K = 0x45
const BPF_RET_K = 0x06

/** One `struct sock_filter`: { u16 code; u8 jt; u8 jf; u32 k; }. */
export interface BpfInstruction { code: number, jt: number, jf: number, k: number }

const load = (offset: number): BpfInstruction => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset })
const jump = (code: number, k: number, jt: number, jf: number): BpfInstruction => ({ code, jt, jf, k: k >>> 0 })
const ret = (k: number): BpfInstruction => ({ code: BPF_RET_K, jt: 0, jf: 0, k: k >>> 0 })

/** The filter's instructions for `arch` (see the top of this file). */
export function seccompInstructions (arch: SeccompArch): BpfInstruction[] {
  const numbers = SYSCALL_NUMBERS[arch]
  const program: BpfInstruction[] = [
    load(DATA_ARCH),
    jump(BPF_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET_KILL_PROCESS),
    load(DATA_NR)
  ]
  if (arch === 'x86_64') {
    program.push(
      // nr ≥ 0x40000000: x32, unless it is -1 (no call at all: a tracer's skip), which the kernel answers ENOSYS.
      jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 2),
      jump(BPF_JEQ_K, 0xffffffff, 1, 0),
      ret(SECCOMP_RET_KILL_PROCESS)
    )
  }
  for (const { name, errno } of DENIED_CALLS) {
    const nr = numbers[name]
    if (nr === undefined) continue
    program.push(jump(BPF_JEQ_K, nr, 0, 1), ret(SECCOMP_RET_ERRNO | errno))
  }
  program.push(
    jump(BPF_JEQ_K, numbers.clone!, 0, 3),
    // clone(flags, …): flags is the first argument on both architectures.
    load(DATA_ARG0_LOW),
    jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1),
    ret(SECCOMP_RET_ERRNO | EPERM),
    ret(SECCOMP_RET_ALLOW)
  )
  return program
}

/** The filter as bwrap reads it: an array of `struct sock_filter` in the machine's (little-endian) byte order. */
export function seccompProgram (arch: SeccompArch): Buffer {
  const program = seccompInstructions(arch)
  const bytes = Buffer.alloc(program.length * 8)
  program.forEach(({ code, jt, jf, k }, index) => {
    bytes.writeUInt16LE(code, index * 8)
    bytes.writeUInt8(jt, index * 8 + 2)
    bytes.writeUInt8(jf, index * 8 + 3)
    bytes.writeUInt32LE(k, index * 8 + 4)
  })
  return bytes
}

/** The filter's architecture for a Node `process.arch`, or undefined where none is made (the run's record says so). */
export function seccompArchOf (nodeArch: string = process.arch): SeccompArch | undefined {
  if (nodeArch === 'x64') return 'x86_64'
  if (nodeArch === 'arm64') return 'aarch64'
  return undefined
}

/** What a run's record says of the filter: e.g. `buildhaus-1 x86_64`. */
export function seccompLabel (arch: SeccompArch): string {
  return `${SECCOMP_POLICY} ${arch}`
}

/** The filter a node's sandboxes load, made once, or why they load none (said in every run's record). */
export type SandboxSeccomp = { program: Buffer, label: string } | { missing: string }

/** The node's filter: none where bwrap cannot load one (no `--seccomp`) or none is made for this architecture. */
export function sandboxSeccomp (bwrapLoadsSeccomp: boolean, nodeArch: string = process.arch): SandboxSeccomp {
  if (!bwrapLoadsSeccomp) return { missing: 'this bubblewrap has no --seccomp option' }
  const arch = seccompArchOf(nodeArch)
  if (arch === undefined) return { missing: `no filter is made for this architecture (${nodeArch}; x64 and arm64 have one)` }
  return { program: seccompProgram(arch), label: seccompLabel(arch) }
}

/** The run record's warning for a sandbox without the filter. */
export function noSeccompWarning (why: string): string {
  return `no seccomp filter (${why}): the host kernel's whole system call interface is reachable from the sandbox, so a kernel exploit is an escape`
}
