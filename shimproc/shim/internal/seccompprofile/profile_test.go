package seccompprofile

import (
	"encoding/binary"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData lays out struct seccomp_data for x/net/bpf's VM, which loads
// words in network byte order: each 32-bit word is written big-endian, and
// the two words of a 64-bit argument are placed in the host's order (the
// filter reads the low word where a little-endian kernel keeps it).
func seccompData(nr uint32, auditArch uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		off := 16 + 8*i
		binary.BigEndian.PutUint32(b[off:], uint32(a))       // low word first: little-endian host
		binary.BigEndian.PutUint32(b[off+4:], uint32(a>>32)) // then the high word
	}
	return b
}

// The assembled profile decides each kind of call as documented: allowed,
// EPERM, ENOSYS for clone3 and the x32 ABI, EPERM for another
// architecture's calling convention.
func TestProgramDecisions(t *testing.T) {
	t.Parallel()
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	if info.ID != arch.X86_64.ID {
		t.Skipf("the byte layout of this test assumes x86-64, not %s", info.Name)
	}
	raw, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	nr := func(name string) uint32 { return uint32(info.SyscallNames[name]) }
	const (
		allow  = uint32(seccomp.ActionAllow)
		eperm  = uint32(seccomp.ActionErrno) | uint32(unix.EPERM)
		enosys = uint32(seccomp.ActionErrno) | uint32(unix.ENOSYS)
	)
	native := uint32(info.ID)
	cases := []struct {
		name string
		data []byte
		want uint32
	}{
		{"read", seccompData(nr("read"), native, 0, 0, 0), allow},
		{"mount", seccompData(nr("mount"), native), eperm},
		{"ptrace", seccompData(nr("ptrace"), native), eperm},
		{"setns", seccompData(nr("setns"), native), eperm},
		{"clone for a thread", seccompData(nr("clone"), native, unix.CLONE_VM|unix.CLONE_THREAD|unix.CLONE_SIGHAND), allow},
		{"clone with a user namespace", seccompData(nr("clone"), native, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{"clone3", seccompData(nr("clone3"), native), enosys},
		{"unshare of the file table", seccompData(nr("unshare"), native, unix.CLONE_FILES), allow},
		{"unshare of a time namespace", seccompData(nr("unshare"), native, unix.CLONE_NEWTIME), eperm},
		{"personality query", seccompData(nr("personality"), native, 0xffffffff), allow},
		{"personality PER_LINUX", seccompData(nr("personality"), native, 0), allow},
		{"personality ADDR_NO_RANDOMIZE", seccompData(nr("personality"), native, 0x0040000), eperm},
		{"x32 read", seccompData(nr("read")|0x40000000, native), enosys},
		{"i386 read (int 0x80)", seccompData(3, uint32(arch.I386.ID)), eperm},
	}
	for _, c := range cases {
		got, err := vm.Run(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: action %#x, want %#x", c.name, got, c.want)
		}
	}
}

// Every name in the deny list is a system call on at least one
// architecture the library knows: a typo would be skipped silently.
func TestDeniedNamesExist(t *testing.T) {
	t.Parallel()
	for _, group := range DeniedSyscalls {
		for _, name := range group {
			found := false
			for _, a := range []*arch.Info{arch.X86_64, arch.I386, arch.AARCH64, arch.ARM, arch.X32} {
				if _, ok := a.SyscallNames[name]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("%q is not a system call on any architecture", name)
			}
		}
	}
}
