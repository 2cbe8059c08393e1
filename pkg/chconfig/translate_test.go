package chconfig

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// section translates "--kernel /k OPTION VALUE" and returns the named VmConfig field as JSON.
func section(t *testing.T, option, value, field string) (map[string]any, error) {
	t.Helper()
	tr, err := Translate([]string{"--kernel", "/k", option, value})
	if err != nil {
		return nil, err
	}
	var all map[string]any
	b, _ := json.Marshal(tr.Config)
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	v := all[field]
	if l, ok := v.([]any); ok {
		v = l[len(l)-1]
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// TestOptionVectors restates cloud-hypervisor's vmm/src/config.rs unit tests (test_cpu_parsing,
// test_mem_parsing, test_disk_parsing, test_net_parsing, test_parse_rng, test_parse_balloon,
// test_parse_fs, test_console_parsing, test_device_parsing, test_vsock_parsing) as
// option → VmConfig JSON: every key in want must match; keys not listed are not checked here
// (the goldens check whole configs).
func TestOptionVectors(t *testing.T) {
	for _, tc := range []struct {
		option, value, field, want string
	}{
		{"--cpus", "", "cpus", `{"boot_vcpus":1,"max_vcpus":1,"max_phys_bits":46,"nested":true,"kvm_hyperv":false,"core_scheduling":"Vm"}`},
		{"--cpus", "boot=1,max=2", "cpus", `{"boot_vcpus":1,"max_vcpus":2}`},
		{"--cpus", "boot=8,topology=2:2:1:2", "cpus", `{"boot_vcpus":8,"max_vcpus":8,"topology":{"threads_per_core":2,"cores_per_die":2,"dies_per_package":1,"packages":2}}`},
		{"--cpus", "boot=1,kvm_hyperv=on", "cpus", `{"kvm_hyperv":true}`},
		{"--cpus", "boot=1,core_scheduling=vcpu", "cpus", `{"core_scheduling":"Vcpu"}`},
		{"--cpus", "boot=1,core_scheduling=off", "cpus", `{"core_scheduling":"Off"}`},
		{"--cpus", "nested=off", "cpus", `{"nested":false}`},
		{"--memory", "", "memory", `{"size":536870912,"mergeable":false,"hotplug_method":"Acpi","shared":false,"thp":true}`},
		{"--memory", "size=512M,mergeable=on", "memory", `{"size":536870912,"mergeable":true}`},
		{"--memory", "size=1G,mergeable=off", "memory", `{"size":1073741824,"mergeable":false}`},
		{"--memory", "hotplug_method=acpi,hotplug_size=512M", "memory", `{"hotplug_method":"Acpi","hotplug_size":536870912}`},
		{"--memory", "hotplug_method=virtio-mem,hotplug_size=512M", "memory", `{"hotplug_method":"VirtioMem","hotplug_size":536870912}`},
		{"--memory", "hugepages=on,size=1G,hugepage_size=2M", "memory", `{"hugepages":true,"size":1073741824,"hugepage_size":2097152}`},
		{"--memory", "size=1G,hugepages=on,reserve=on", "memory", `{"reserve":true}`},
		{"--memory", "size=1G,file=/dev/shm", "memory", `{"size":1073741824}`}, // file= is parsed and ignored
		{"--disk", "path=/path/to_file", "disks", `{"path":"/path/to_file","readonly":false,"direct":false,"num_queues":1,"queue_size":128,"vhost_user":false,"sparse":true,"backing_files":false,"image_type":"Unknown","lock_granularity":"ByteRange","pci_segment":0}`},
		{"--disk", "path=/path/to_file,id=mydisk0", "disks", `{"id":"mydisk0"}`},
		{"--disk", "vhost_user=true,socket=/tmp/sock", "disks", `{"vhost_user":true,"vhost_socket":"/tmp/sock","image_type":"Unknown"}`},
		{"--disk", "path=/path/to_file,iommu=on,queue_size=256,num_queues=4", "disks", `{"iommu":true,"queue_size":256,"num_queues":4}`},
		{"--disk", "path=/path/to_file,direct=on", "disks", `{"direct":true}`},
		{"--disk", "path=/path/to_file,serial=test", "disks", `{"serial":"test"}`},
		{"--disk", "path=/path/to_file,rate_limit_group=group0", "disks", `{"rate_limit_group":"group0"}`},
		{"--disk", "path=/path/to_file,lock_granularity=full", "disks", `{"lock_granularity":"Full"}`},
		{"--disk", "path=/path/to_file,image_type=QCOW2,sparse=off", "disks", `{"image_type":"Qcow2","sparse":false}`},
		{"--disk", "path=/path/to_file,image_type=raw", "disks", `{"image_type":"Raw"}`},
		{"--disk", `path="/a,b",readonly=on`, "disks", `{"path":"/a,b","readonly":true}`},
		{"--net", "mac=de:ad:be:ef:12:34,host_mac=12:34:de:ad:be:ef", "net", `{"mac":"de:ad:be:ef:12:34","host_mac":"12:34:de:ad:be:ef","num_queues":2,"queue_size":256,"vhost_user":false,"vhost_mode":"Client","offload_tso":true,"offload_ufo":true,"offload_csum":true}`},
		{"--net", "mac=de:ad:be:ef:12:34,host_mac=12:34:de:ad:be:ef,id=mynet0", "net", `{"id":"mynet0"}`},
		{"--net", "mac=de:ad:be:ef:12:34,host_mac=12:34:de:ad:be:ef,tap=tap0,ip=192.168.100.1,mask=255.255.255.128", "net", `{"tap":"tap0","ip":"192.168.100.1","mask":"255.255.255.128"}`},
		{"--net", "mac=de:ad:be:ef:12:34,host_mac=12:34:de:ad:be:ef,vhost_user=true,socket=/tmp/sock", "net", `{"vhost_user":true,"vhost_socket":"/tmp/sock"}`},
		{"--net", "mac=de:ad:be:ef:12:34,host_mac=12:34:de:ad:be:ef,num_queues=4,queue_size=1024,iommu=on", "net", `{"iommu":true,"num_queues":4,"queue_size":1024}`},
		{"--net", "mac=de:ad:be:ef:12:34,fd=[3,7],num_queues=4", "net", `{"fds":[3,7],"num_queues":4}`},
		{"--net", "mac=DE:AD:BE:EF:12:34,mtu=1400,vhost_mode=server,offload_tso=off", "net", `{"mac":"de:ad:be:ef:12:34","mtu":1400,"vhost_mode":"Server","offload_tso":false}`},
		{"--rng", "src=/dev/random", "rng", `{"src":"/dev/random"}`},
		{"--rng", "src=/dev/random,iommu=on,pci_segment=1,pci_device_id=7", "rng", `{"src":"/dev/random","iommu":true,"pci_segment":1,"pci_device_id":7}`},
		{"--rng", "iommu=on", "rng", `{"src":"/dev/urandom","iommu":true}`},
		{"--balloon", "size=128M,deflate_on_oom=on,free_page_reporting=on,pci_segment=1,pci_device_id=7", "balloon", `{"size":134217728,"deflate_on_oom":true,"free_page_reporting":true,"pci_segment":1,"pci_device_id":7}`},
		{"--balloon", "size=0,iommu=on", "balloon", `{"size":0,"iommu":true,"deflate_on_oom":false}`},
		{"--fs", "tag=mytag,socket=/tmp/sock", "fs", `{"tag":"mytag","socket":"/tmp/sock","num_queues":1,"queue_size":1024}`},
		{"--fs", "tag=mytag,socket=/tmp/sock,num_queues=4,queue_size=1024", "fs", `{"num_queues":4}`},
		{"--console", "off", "console", `{"mode":"Off"}`},
		{"--console", "pty", "console", `{"mode":"Pty"}`},
		{"--console", "tty", "console", `{"mode":"Tty"}`},
		{"--console", "null", "console", `{"mode":"Null"}`},
		{"--console", "file=/tmp/console", "console", `{"mode":"File","file":"/tmp/console"}`},
		{"--console", "null,iommu=on", "console", `{"mode":"Null","iommu":true}`},
		{"--console", "socket=/tmp/serial.sock,iommu=on", "console", `{"mode":"Socket","socket":"/tmp/serial.sock","iommu":true}`},
		{"--serial", "tty", "serial", `{"mode":"Tty"}`},
		{"--serial", "socket=/tmp/serial.sock", "serial", `{"mode":"Socket","socket":"/tmp/serial.sock"}`},
		{"--device", "path=/path/to/device,iommu=on,id=mydevice0", "devices", `{"path":"/path/to/device","iommu":true,"id":"mydevice0"}`},
		{"--vsock", "socket=/tmp/sock,cid=3", "vsock", `{"cid":3,"socket":"/tmp/sock"}`},
		{"--vsock", "socket=/tmp/sock,cid=3,iommu=on", "vsock", `{"cid":3,"iommu":true}`},
		{"--platform", "", "platform", `{"num_pci_segments":1,"iommu_address_width_bits":64,"iommufd":false,"vfio_p2p_dma":true}`},
		{"--platform", "serial_number=abc,system_serial_number=def,uuid=u1", "platform", `{"system_serial_number":"def","system_uuid":"u1"}`},
		{"--platform", "oem_strings=[a,b],system_manufacturer=\"ACME, Inc\"", "platform", `{"oem_strings":["a","b"],"system_manufacturer":"ACME, Inc"}`},
		{"--platform", `oem_strings=["x,y",z]`, "platform", `{"oem_strings":["\"x,y\"","z"]}`},
		{"--platform", "num_pci_segments=2,iommu_segments=[0-1]", "platform", `{"num_pci_segments":2,"iommu_segments":[0,1]}`},
	} {
		got, err := section(t, tc.option, tc.value, tc.field)
		if err != nil {
			t.Errorf("%s %q: %v", tc.option, tc.value, err)
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s %q: %s = %v, want %v (all: %v)", tc.option, tc.value, k, got[k], v, got)
			}
		}
	}
}

// TestRejected: invalid input (as cloud-hypervisor rejects it) and valid input host-launcher does
// not translate; the error must name the option.
func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		argv        []string
		mention     string
		unsupported bool
	}{
		{[]string{"--kernel", "/k", "--cpus", "boot=8,topology=2:2:1"}, "--cpus", false},
		{[]string{"--kernel", "/k", "--cpus", "boot=8,topology=2:2:1:x"}, "--cpus", false},
		{[]string{"--kernel", "/k", "--cpus", "boot=1,core_scheduling=invalid"}, "core_scheduling", false},
		{[]string{"--kernel", "/k", "--cpus", "boot=2,affinity=[0@[0,2],1@[1,3]]"}, "--cpus affinity", true},
		{[]string{"--kernel", "/k", "--fs", ""}, "--fs", false},
		{[]string{"--kernel", "/k", "--fs", "tag=mytag"}, "socket", false},
		{[]string{"--kernel", "/k", "--fs", "socket=/tmp/sock"}, "tag", false},
		{[]string{"--kernel", "/k", "--fs", "tag=0123456789012345678901234567890123456,socket=/s"}, "longer", false},
		{[]string{"--kernel", "/k", "--fs", "tag=a,socket=/s,iommu=on"}, `"iommu"`, false},
		{[]string{"--kernel", "/k", "--console", ""}, "--console", false},
		{[]string{"--kernel", "/k", "--console", "badmode"}, "--console", false},
		{[]string{"--kernel", "/k", "--serial", "file="}, "--serial", false},
		{[]string{"--kernel", "/k", "--vsock", ""}, "--vsock", false},
		{[]string{"--kernel", "/k", "--vsock", "socket=/s"}, "cid", false},
		{[]string{"--kernel", "/k", "--vsock", "socket=/s,cid=4294967296"}, "cid", false},
		{[]string{"--kernel", "/k", "--device", "fd=7"}, "--device fd", true},
		{[]string{"--kernel", "/k", "--device", "fd=notanint"}, "--device fd", true},
		{[]string{"--kernel", "/k", "--disk", "path=/a,bw_size=1000,bw_refill_time=10"}, "--disk bw_size", true},
		{[]string{"--kernel", "/k", "--disk", "path=/a,queue_affinity=[0@[1]]"}, "--disk queue_affinity", true},
		{[]string{"--kernel", "/k", "--disk", "path=/a,image_type=iso"}, "image_type", false},
		{[]string{"--kernel", "/k", "--disk", "path=/a,readonly=maybe"}, "readonly", false},
		{[]string{"--kernel", "/k", "--disk", "path=/a,nosuchkey=1"}, `"nosuchkey"`, false},
		{[]string{"--kernel", "/k", "--net", "mac=de:ad:be:ef:12"}, "mac", false},
		{[]string{"--kernel", "/k", "--net", "mac=de:ad:be:ef:12:3g"}, "mac", false},
		{[]string{"--kernel", "/k", "--net", "ip=300.1.1.1"}, "ip", false},
		{[]string{"--kernel", "/k", "--net", "ip=fe80::1%eth0"}, "ip", false},
		{[]string{"--kernel", "/k", "--net", "fd=[3,2147483648]"}, "fd", false},
		{[]string{"--kernel", "/k", "--platform", "iommufd_fd=42"}, "iommufd_fd", true},
		{[]string{"--kernel", "/k", "--platform", "tdx=on"}, `"tdx"`, false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential:db=hunter2]"}, "io.systemd.credential:db…", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential.binary:k=aGk=]"}, "--credential", false},
		{[]string{"--kernel", "/k", "--platform", `oem_strings=["io.systemd.credential:db=hunter2"]`}, "io.systemd.credential:db…", false},
		{[]string{"--kernel", "/k", "--platform", `oem_strings=[x'io.systemd.credential:db=hunter2']`}, "io.systemd.credential:db…", false},
		// No '=': nothing after the prefix is shown (it may be the value).
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential.binary:hunter2]"}, "io.systemd.credential…", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential:hunter2]"}, "io.systemd.credential…", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credentialhunter2]"}, "io.systemd.credential…", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[\"a]"}, "--platform", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[]"}, "element 1 is empty", false},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[a,,b]"}, "element 2 is empty", false},
		{[]string{"--kernel", "/k", "--memory-zone", "id=z,size=1G"}, "--memory-zone", true},
		{[]string{"--kernel", "/k", "--restore", "source_url=file:///x"}, "--restore", true},
		{[]string{"--kernel", "/k", "--rtc"}, "--rtc", true},
		{[]string{"--kernel", "/k", "--pmem", "file=/x"}, "--pmem", true},
		{[]string{"--kernel", "/k", "--debug-console", "tty"}, "--debug-console", true},
		{[]string{"--kernel", "/k", "--api-socket", "fd=3"}, "--api-socket fd", true},
		{[]string{"--kernel", "/k", "--event-monitor", "fd=3"}, "--event-monitor fd", true},
		{[]string{"--version"}, "--version", true},
		{[]string{"-V"}, "-V", true},
		// Any -v lets cloud-hypervisor log the vm.create body (credentials) at Info level.
		{[]string{"--kernel", "/k", "-v"}, "-v: at Info level", true},
		{[]string{"--kernel", "/k", "-vvv", "--log-file", "/l"}, "-vvv: at Info level", true},
		// The D-Bus API is a second, unfiltered API.
		{[]string{"--kernel", "/k", "--dbus-service-name", "org.example.vm1"}, "--dbus-service-name: the D-Bus API", true},
		{[]string{"--kernel", "/k", "--dbus-object-path", "/org/example/vm1"}, "--dbus-object-path", true},
		{[]string{"--kernel", "/k", "--dbus-system-bus"}, "--dbus-system-bus", true},
		{[]string{"--kernel", "/k", "--kernel", "/k2"}, "--kernel given twice", false},
		{[]string{"--kernel"}, "--kernel needs a value", false},
		{[]string{"--kernel", "/k", "--cmdline", "-x"}, "--cmdline needs a value", false},
		{[]string{"--kernel", "/k", "stray"}, `"stray"`, false},
		{[]string{"--kernel", "/k", "--", "stray"}, `"stray"`, false},
		{[]string{"--kernel", "/k", "--bogus"}, "--bogus", false},
		{[]string{"--kernel", "/k", "-x"}, `"-x"`, false},
		{[]string{"--kernel", "/k", "--watchdog=on"}, "--watchdog", false},
		{[]string{"--kernel", "/k", "--disk=path=/a", "path=/b"}, "ambiguous", false},
		{[]string{"--cpus", "boot=2"}, "--kernel or --firmware", false},
	} {
		_, err := Translate(tc.argv)
		if err == nil {
			t.Errorf("%q: accepted", tc.argv)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%q: error %q does not mention %q", tc.argv, err, tc.mention)
		}
		if errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%q: errors.Is(ErrUnsupported) = %v, want %v (%v)", tc.argv, !tc.unsupported, tc.unsupported, err)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "aGk=") {
			t.Errorf("%q: error quotes a credential value: %v", tc.argv, err)
		}
	}
}

// TestArgvGrammar: clap's ways of writing the same thing give the same VmConfig.
func TestArgvGrammar(t *testing.T) {
	base, err := Translate([]string{"--kernel", "/k", "--disk", "path=/a", "path=/b", "--disk", "path=/c", "--net", "tap=t0", "--seccomp", "false", "--watchdog"})
	if err != nil {
		t.Fatal(err)
	}
	same, err := Translate([]string{"--kernel=/k", "--disk=path=/a", "--disk", "path=/b", "path=/c", "--net=tap=t0", "--seccomp=false", "--watchdog"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(base.Config, same.Config) {
		t.Errorf("configs differ:\n%+v\n%+v", base.Config, same.Config)
	}
	if len(base.Config.Disks) != 3 || *base.Config.Disks[2].Path != "/c" || !base.Config.Watchdog {
		t.Errorf("disks/watchdog not collected: %+v", base.Config)
	}
	if want := []string{"--seccomp", "false"}; !reflect.DeepEqual(base.VMMArgs, want) {
		t.Errorf("VMMArgs = %q, want %q", base.VMMArgs, want)
	}
	if want := []string{"--seccomp=false"}; !reflect.DeepEqual(same.VMMArgs, want) {
		t.Errorf("VMMArgs = %q, want %q", same.VMMArgs, want)
	}
	tr, err := Translate([]string{"--kernel", "/k", "--log-file", "/var/log/ch.log", "--event-monitor", "path=/run/ev", "--no-shutdown", "--api-socket", "/run/vm.sock", "--cmdline", "a=b --c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--log-file", "/var/log/ch.log", "--event-monitor", "path=/run/ev", "--no-shutdown"}; !reflect.DeepEqual(tr.VMMArgs, want) {
		t.Errorf("VMMArgs = %q, want %q", tr.VMMArgs, want)
	}
	if tr.APISocket != "/run/vm.sock" || *tr.Config.Payload.Cmdline != "a=b --c" {
		t.Errorf("api socket %q, cmdline %q", tr.APISocket, *tr.Config.Payload.Cmdline)
	}
	for in, want := range map[string]string{"path=/x.sock": "/x.sock", "/y.sock": "/y.sock", "path=/z,bogus=1": "/z", `path="/q"`: "/q"} {
		if got, err := apiSocketPath(in); err != nil || got != want {
			t.Errorf("--api-socket %q → %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNotifySocketTakenOver(t *testing.T) {
	tr, err := Translate([]string{"--kernel", "/k", "--platform", "oem_strings=[hello,io.systemd.credential:vmm.notify_socket=vsock-stream:2:8888]"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.NotifySocket != "vsock-stream:2:8888" {
		t.Errorf("NotifySocket = %q", tr.NotifySocket)
	}
	if !reflect.DeepEqual(tr.Config.Platform.OemStrings, []string{"hello"}) {
		t.Errorf("notify string left in oem_strings: %q", tr.Config.Platform.OemStrings)
	}
	tr, err = Translate([]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential:vmm.notify_socket=vsock-stream:2:8888]"})
	if err != nil || tr.Config.Platform.OemStrings != nil {
		t.Errorf("only the notify socket: %v %q", err, tr.Config.Platform.OemStrings)
	}
}

// TestGoldens translates whole command lines (testdata/*.argv: one argument per line) and
// compares the VmConfig with testdata/*.json. go test -update rewrites the JSON.
func TestGoldens(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.argv")
	if len(files) == 0 {
		t.Fatal("no goldens")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		argv := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		tr, err := Translate(argv)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		got, _ := json.MarshalIndent(struct {
			Config       VmConfig `json:"config"`
			VMMArgs      []string `json:"vmm_args"`
			APISocket    string   `json:"api_socket"`
			NotifySocket string   `json:"notify_socket"`
		}{tr.Config, tr.VMMArgs, tr.APISocket, tr.NotifySocket}, "", "  ")
		got = append(got, '\n')
		golden := strings.TrimSuffix(f, ".argv") + ".json"
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: translation differs from %s:\n%s", f, golden, got)
		}
	}
}
