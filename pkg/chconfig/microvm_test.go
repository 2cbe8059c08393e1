package chconfig

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The three microvm.nix shapes in testdata/microvm-*.argv are the command lines that
// lib/runners/cloud-hypervisor.nix (microvm.nix 71beea00) builds: opsMapped renders each
// option's attributes sorted by name, tapMultiQueue (vcpu > 1) adds num_queues=vcpu to disks
// and 2*vcpu to nets, lib/macvtap.nix numbers macvtap queue fds from 3, and a set vsock.cid adds
// --vsock cid=N,socket=notify.vsock and the vmm.notify_socket OEM string. Here each field is
// checked against what that command line means, one by one.

func translateFile(t *testing.T, name string) *Translation {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name + ".argv")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Translate(strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestMicrovmVolumesVirtiofsTap(t *testing.T) {
	tr := translateFile(t, "microvm-volumes-virtiofs-tap")
	c := tr.Config
	check(t, "vcpus (microvm.vcpu=2)", [2]uint32{c.Cpus.BootVcpus, c.Cpus.MaxVcpus}, [2]uint32{2, 2})
	check(t, "memory bytes (microvm.mem=1024)", c.Memory.Size, uint64(1024<<20))
	check(t, "shared memory (virtiofs needs it)", c.Memory.Shared, true)
	check(t, "mergeable (not with shared)", c.Memory.Mergeable, false)
	check(t, "kernel", *c.Payload.Kernel, "/nix/store/aaaa-linux-6.12.30-dev/vmlinux")
	check(t, "initramfs", *c.Payload.Initramfs, "/nix/store/bbbb-initrd-linux-6.12.30/initrd")
	check(t, "cmdline keeps init= and regInfo=", strings.Contains(*c.Payload.Cmdline, " init=/nix/store/cccc-nixos-system-web-25.11/init regInfo=/nix/store/dddd-closure-info/registration"), true)
	check(t, "firmware", c.Payload.Firmware, (*string)(nil))
	check(t, "one volume", len(c.Disks), 1)
	d := c.Disks[0]
	check(t, "volume path", *d.Path, "var.img")
	check(t, "volume direct=off readonly=off", [2]bool{d.Direct, d.Readonly}, [2]bool{false, false})
	check(t, "volume image_type=raw", d.ImageType, "Raw")
	check(t, "volume queues (tapMultiQueue: vcpu)", d.NumQueues, uint64(2))
	check(t, "one share", len(c.Fs), 1)
	check(t, "share tag/socket", [2]string{c.Fs[0].Tag, c.Fs[0].Socket}, [2]string{"ro-store", "web-virtiofs-ro-store.sock"})
	check(t, "one tap", len(c.Net), 1)
	n := c.Net[0]
	check(t, "tap name", *n.Tap, "vm-web")
	check(t, "tap mac", *n.Mac, "02:00:00:00:00:01")
	check(t, "tap queues (2*vcpu)", n.NumQueues, uint64(4))
	check(t, "no fds for a tap", n.FDs, []int(nil))
	check(t, "serial tty (journal gets the console)", c.Serial.Mode, "Tty")
	check(t, "console null", c.Console.Mode, "Null")
	check(t, "watchdog", c.Watchdog, true)
	check(t, "no vsock without microvm.vsock.cid", c.Vsock, (*VsockConfig)(nil))
	check(t, "--platform '' gives a default platform", *c.Platform, PlatformConfig{NumPciSegments: 1, IommuAddressWidthBits: 64, VfioP2PDma: true})
	check(t, "no balloon", c.Balloon, (*BalloonConfig)(nil))
	check(t, "VMM args", tr.VMMArgs, []string{"--seccomp", "true"})
	check(t, "api socket", tr.APISocket, "web.sock")
	check(t, "no notify socket", tr.NotifySocket, "")
}

func TestMicrovmMacvtap(t *testing.T) {
	tr := translateFile(t, "microvm-macvtap")
	c := tr.Config
	check(t, "memory (mem=512, mergeable without virtiofs)", [2]any{c.Memory.Size, c.Memory.Mergeable}, [2]any{uint64(512 << 20), true})
	check(t, "store disk", *c.Disks[0].Path, "/nix/store/eeee-microvm-store-disk.erofs")
	check(t, "store disk read-only", c.Disks[0].Readonly, true)
	check(t, "store disk queues", c.Disks[0].NumQueues, uint64(2))
	n := c.Net[0]
	check(t, "macvtap fds opened by microvm-run (3, 4)", n.FDs, []int{3, 4})
	check(t, "queues = 2 per fd", n.NumQueues, uint64(2*len(n.FDs)))
	check(t, "macvtap has no tap name", n.Tap, (*string)(nil))
	check(t, "mac", *n.Mac, "02:00:00:00:00:02")
	check(t, "api socket", tr.APISocket, "mvt.sock")
}

func TestMicrovmBalloonVsock(t *testing.T) {
	tr := translateFile(t, "microvm-balloon-vsock")
	c := tr.Config
	check(t, "one vcpu", c.Cpus.BootVcpus, uint32(1))
	check(t, "memory", c.Memory.Size, uint64(2048<<20))
	check(t, "balloon size (initialBalloonMem=512)", c.Balloon.Size, uint64(512<<20))
	check(t, "balloon deflate_on_oom, free_page_reporting", [2]bool{c.Balloon.DeflateOnOOM, c.Balloon.FreePageReporting}, [2]bool{true, true})
	check(t, "vsock (microvm.vsock.cid=5)", *c.Vsock, VsockConfig{Cid: 5, Socket: "notify.vsock"})
	check(t, "platformOEMStrings kept", c.Platform.OemStrings, []string{"hello"})
	check(t, "vmm.notify_socket taken over, not forwarded", tr.NotifySocket, "vsock-stream:2:8888")
	check(t, "two disks", len(c.Disks), 2)
	check(t, "volume serial", *c.Disks[1].Serial, "data")
	check(t, "volume queues (no multiqueue with one vcpu)", c.Disks[1].NumQueues, uint64(1))
	check(t, "api socket", tr.APISocket, "bal.sock")
}
