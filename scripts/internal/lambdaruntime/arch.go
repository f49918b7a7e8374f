package lambdaruntime

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"runtime"
)

// emulators maps an ELF machine to the Go architecture it needs and the
// qemu user-mode emulators (Debian's qemu-user-static) that run it elsewhere.
var emulators = map[elf.Machine]struct {
	goarch string
	qemu   []string
}{
	elf.EM_AARCH64: {"arm64", []string{"qemu-aarch64-static", "qemu-aarch64"}},
	elf.EM_X86_64:  {"amd64", []string{"qemu-x86_64-static", "qemu-x86_64"}},
}

// Command returns the argv that runs a bootstrap binary on this machine.
// The stack deploys arm64 binaries, as Lambda runs them; on an amd64
// machine the very same binary runs under qemu's user-mode emulator, so the
// local cloud never runs a different build from the one deployed.
func Command(bootstrap string) ([]string, error) {
	f, err := elf.Open(bootstrap)
	if err != nil {
		// Not an ELF binary (a script, say): let the kernel decide.
		return []string{bootstrap}, nil
	}
	machine := f.Machine
	f.Close()
	e, known := emulators[machine]
	if !known || e.goarch == runtime.GOARCH {
		return []string{bootstrap}, nil
	}
	for _, q := range e.qemu {
		if path, err := exec.LookPath(q); err == nil {
			return []string{path, bootstrap}, nil
		}
	}
	return nil, fmt.Errorf("%s is built for %s and this machine is %s: install qemu-user-static to run it", bootstrap, e.goarch, runtime.GOARCH)
}
