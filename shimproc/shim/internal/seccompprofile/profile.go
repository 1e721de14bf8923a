// Package seccompprofile defines the reference shim's default seccomp
// profile with github.com/elastic/go-seccomp-bpf and assembles it into a
// BPF program.
//
// The shim does not link this package on amd64: the assembled program is
// kept there as generated source (shim's seccomp_filter_amd64.go, checked
// against this package by a test), because the library's syscall tables
// cost every shim start about 0.2 ms and 200 KiB of heap, guests that ask
// for no filter included. On other architectures the shim assembles the
// program at run time from here.
package seccompprofile

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// DeniedSyscalls make the default seccomp profile (security.seccomp) a deny
// list: every system call is allowed except these, which fail with EPERM. It
// follows Docker's default profile and systemd's @system-service in
// spirit: what it takes away is what a service never needs and what acts on
// the whole host rather than on the caller, because a plain process shares
// the host's kernel, clock, mounts and keyrings. docs/SECURITY.md explains
// each group. A name the running architecture lacks is skipped.
var DeniedSyscalls = [][]string{
	// The system clock (systemd @clock).
	{"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"},
	// CPU emulation (@cpu-emulation).
	{"modify_ldt", "vm86", "vm86old"},
	// Debugging and reading other processes' memory (@debug).
	{"kcmp", "lookup_dcookie", "perf_event_open", "pidfd_getfd", "process_vm_readv", "process_vm_writev", "ptrace"},
	// Kernel modules (@module).
	{"create_module", "delete_module", "finit_module", "get_kernel_syms", "init_module", "query_module"},
	// Mounts and the root directory (@mount).
	{"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree", "pivot_root", "umount", "umount2"},
	// Obsolete calls (@obsolete).
	{"_sysctl", "afs_syscall", "bdflush", "getpmsg", "nfsservctl", "putpmsg", "security", "sysfs", "tuxcall", "uselib", "ustat", "vserver"},
	// Raw I/O ports and PCI configuration (@raw-io).
	{"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"},
	// Rebooting and loading a new kernel (@reboot), swap (@swap).
	{"kexec_file_load", "kexec_load", "reboot", "swapoff", "swapon"},
	// Host-wide state that no namespace covers here, as Docker denies it:
	// process accounting, kernel keyrings, BPF, quotas, the kernel log,
	// file handles (which bypass path checks), joining namespaces, the
	// host name, the terminal hang-up, userfaultfd and io_uring.
	{
		"acct", "add_key", "keyctl", "request_key", "bpf", "quotactl", "quotactl_fd", "syslog",
		"name_to_handle_at", "open_by_handle_at", "setns", "sethostname", "setdomainname", "vhangup",
		"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	},
}

// Namespace flags of clone and unshare. Creating namespaces (a user
// namespace above all) is denied, as Docker denies it; clone and unshare
// stay allowed for threads, processes and their other flags. CLONE_NEWTIME
// shares its bit with clone's exit signal, so only unshare checks it.
const (
	cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
	unshareNamespaceFlags = cloneNamespaceFlags | unix.CLONE_NEWTIME
)

// allowedPersonalities are the execution domains a guest may select, as in
// Docker's profile (Linux, its 32-bit variant, UNAME26, and the query
// 0xffffffff); others, such as ADDR_NO_RANDOMIZE, weaken the guest's
// defences.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// errnoENOSYS makes a call look absent, so that the C library falls back to
// an older call: clone3 passes its flags in memory, out of a filter's
// reach, so it is answered ENOSYS and glibc uses clone, whose flags the
// filter checks (Docker does the same).
const errnoENOSYS = seccomp.Action(unix.ENOSYS)

// Policy is the default profile for the running architecture.
func Policy(info *arch.Info) seccomp.Policy {
	var denied []string
	for _, group := range DeniedSyscalls {
		for _, name := range group {
			if _, ok := info.SyscallNames[name]; ok {
				denied = append(denied, name)
			}
		}
	}
	notAllowedPersonality := make(seccomp.ArgumentConditions, 0, len(allowedPersonalities))
	for _, p := range allowedPersonalities {
		notAllowedPersonality = append(notAllowedPersonality, seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: p})
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: denied}, // ActionErrno alone is EPERM
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNamespaceFlags}}},
				{Name: "unshare", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: unshareNamespaceFlags}}},
				{Name: "personality", Conditions: notAllowedPersonality},
			}},
			{Action: seccomp.ActionErrno | errnoENOSYS, Names: []string{"clone3"}},
		},
	}
}

// Program assembles the default profile for the running architecture, behind a guard that denies
// every call made through another architecture's calling convention (int
// 0x80 on x86-64, for one): the library's filter lets a foreign
// architecture through to its default action, which for a deny list is
// allow.
func Program() ([]bpf.RawInstruction, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	policy := Policy(info)
	body, err := policy.Assemble()
	if err != nil {
		return nil, err
	}
	const archOffset = 4 // struct seccomp_data: int nr; __u32 arch; ...
	guard := []bpf.Instruction{
		bpf.LoadAbsolute{Off: archOffset, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(seccomp.ActionErrno) | uint32(unix.EPERM)},
	}
	return bpf.Assemble(append(guard, body...))
}
