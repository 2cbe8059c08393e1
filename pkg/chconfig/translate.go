package chconfig

import (
	"fmt"
	"net/netip"
	"strings"
)

// Translation is a cloud-hypervisor command line, split the way host-launcher runs it.
type Translation struct {
	// Config is the VmConfig cloud-hypervisor would have built from the VM options.
	Config VmConfig
	// VMMArgs are the options for the cloud-hypervisor process itself, verbatim and in order.
	VMMArgs []string
	// APISocket is the path of --api-socket, or "".
	APISocket string
	// NotifySocket is the value of an "io.systemd.credential:vmm.notify_socket=…" OEM string
	// that was in --platform oem_strings and has been removed from Config, or "".
	NotifySocket string
}

// NotifySocketPrefix is the OEM string systemd reads for its supervisor notification address
// (systemd's src/core/main.c, vmm.notify_socket credential).
const NotifySocketPrefix = "io.systemd.credential:vmm.notify_socket="

// Translate turns cloud-hypervisor's argv (without the program name) into a Translation.
// Errors name the option and, where there is one, the key; errors.Is(err, ErrUnsupported)
// tells valid-but-untranslated input from invalid input. Errors may quote the argv, which must
// therefore hold no secret (credentials travel separately).
func Translate(argv []string) (*Translation, error) {
	p, err := splitArgv(argv)
	if err != nil {
		return nil, err
	}
	t := &Translation{VMMArgs: p.vmmArgs}
	if v, ok := p.values["api-socket"]; ok {
		if t.APISocket, err = apiSocketPath(v[0]); err != nil {
			return nil, err
		}
	}
	if v, ok := p.values["event-monitor"]; ok {
		o := newOptionSet("--event-monitor", []string{"path", "fd"})
		_ = o.parse(v[0], false) // cloud-hypervisor takes a bare path when parsing fails
		if o.isSet("fd") {
			return nil, fmt.Errorf("%w: --event-monitor fd=: host-launcher does not pass its own descriptors to cloud-hypervisor; use path=", ErrUnsupported)
		}
	}
	c := &t.Config
	if c.Cpus, err = parseCpus(p.one("cpus", "boot=1,max_phys_bits=46")); err != nil {
		return nil, err
	}
	if c.Memory, err = parseMemory(p.one("memory", "size=512M")); err != nil {
		return nil, err
	}
	if p.has("kernel") || p.has("firmware") {
		c.Payload = &PayloadConfig{}
		for name, dst := range map[string]**string{"kernel": &c.Payload.Kernel, "firmware": &c.Payload.Firmware,
			"initramfs": &c.Payload.Initramfs, "cmdline": &c.Payload.Cmdline} {
			if p.has(name) {
				v := p.one(name, "")
				*dst = &v
			}
		}
	} else if anyVMOption(p) {
		// clap: the vm-config group requires vm-payload.
		return nil, fmt.Errorf("cloud-hypervisor needs --kernel or --firmware with VM options")
	}
	for _, d := range p.values["disk"] {
		disk, err := parseDisk(d)
		if err != nil {
			return nil, err
		}
		c.Disks = append(c.Disks, disk)
	}
	for _, n := range p.values["net"] {
		net, err := parseNet(n)
		if err != nil {
			return nil, err
		}
		c.Net = append(c.Net, net)
	}
	if c.Rng, err = parseRng(p.one("rng", "src=/dev/urandom")); err != nil {
		return nil, err
	}
	if p.has("balloon") {
		b, err := parseBalloon(p.one("balloon", ""))
		if err != nil {
			return nil, err
		}
		c.Balloon = &b
	}
	for _, f := range p.values["fs"] {
		fs, err := parseFs(f)
		if err != nil {
			return nil, err
		}
		c.Fs = append(c.Fs, fs)
	}
	if c.Serial.ConsoleCommon, _, err = parseConsole("--serial", p.one("serial", "null"), false); err != nil {
		return nil, err
	}
	if c.Console.ConsoleCommon, c.Console.PciCommon, err = parseConsole("--console", p.one("console", "tty"), true); err != nil {
		return nil, err
	}
	for _, d := range p.values["device"] {
		dev, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		c.Devices = append(c.Devices, dev)
	}
	if p.has("vsock") {
		v, err := parseVsock(p.one("vsock", ""))
		if err != nil {
			return nil, err
		}
		c.Vsock = &v
	}
	if p.has("platform") {
		pl, notify, err := parsePlatform(p.one("platform", ""))
		if err != nil {
			return nil, err
		}
		c.Platform, t.NotifySocket = &pl, notify
	}
	c.Pvpanic, c.Watchdog, c.LandlockEnable = p.flags["pvpanic"], p.flags["watchdog"], p.flags["landlock"]
	return t, nil
}

func anyVMOption(p *parsedArgv) bool {
	for _, o := range p.order {
		if options[o.name].role == roleVM {
			return true
		}
	}
	return false
}

// apiSocketPath is main.rs parse_api_socket: path=…, fd=…, or the whole value as a path.
func apiSocketPath(v string) (string, error) {
	o := newOptionSet("--api-socket", []string{"path", "fd"})
	_ = o.parse(v, false)
	if o.isSet("fd") {
		if _, ok := o.raw("fd"); ok {
			return "", fmt.Errorf("%w: --api-socket fd=: host-launcher serves the API socket itself and needs a path", ErrUnsupported)
		}
	}
	if p, ok := o.str("path"); ok {
		return p, nil
	}
	return v, nil
}

var pciKeys = []string{"id", "pci_segment", "pci_device_id"}
var pciIommuKeys = []string{"id", "iommu", "pci_segment", "pci_device_id"}

func keys(own []string, common []string) []string {
	return append(append([]string{}, own...), common...)
}

// parsePci is PciDeviceCommonConfig::parse over an already parsed option set.
func parsePci(o *optionSet) (PciCommon, error) {
	var pc PciCommon
	var err error
	pc.ID = o.strPtr("id")
	if pc.Iommu, err = o.toggle("iommu", false); err != nil {
		return pc, err
	}
	seg, err := o.uintOr("pci_segment", 16, 0)
	if err != nil {
		return pc, err
	}
	pc.PciSegment = uint16(seg)
	if id, ok, err := o.uint("pci_device_id", 8); err != nil {
		return pc, err
	} else if ok {
		b := uint8(id)
		pc.PciDeviceID = &b
	}
	return pc, nil
}

func parseCpus(s string) (CpusConfig, error) {
	o := newOptionSet("--cpus", []string{"boot", "max", "topology", "kvm_hyperv", "max_phys_bits", "affinity", "features", "nested", "core_scheduling", "profile"})
	c := CpusConfig{}
	if err := o.parse(s, false); err != nil {
		return c, err
	}
	if err := o.refuse("affinity", "features", "profile"); err != nil {
		return c, err
	}
	boot, err := o.uintOr("boot", 32, 1)
	if err != nil {
		return c, err
	}
	max, err := o.uintOr("max", 32, boot)
	if err != nil {
		return c, err
	}
	c.BootVcpus, c.MaxVcpus = uint32(boot), uint32(max)
	if v, ok := o.raw("topology"); ok {
		parts := strings.Split(dequote(v), ":")
		if len(parts) != 4 {
			return c, o.convErr("topology", v)
		}
		var n [4]uint16
		for i, part := range parts {
			x, err := parseRustUint(part, 16)
			if err != nil {
				return c, o.convErr("topology", v)
			}
			n[i] = uint16(x)
		}
		c.Topology = &CpuTopology{n[0], n[1], n[2], n[3]}
	}
	if c.KvmHyperv, err = o.toggle("kvm_hyperv", false); err != nil {
		return c, err
	}
	bits, err := o.uintOr("max_phys_bits", 8, 46)
	if err != nil {
		return c, err
	}
	c.MaxPhysBits = uint8(bits)
	if c.Nested, err = o.toggle("nested", true); err != nil {
		return c, err
	}
	c.CoreScheduling = "Vm"
	if v, ok := o.str("core_scheduling"); ok {
		m := map[string]string{"vm": "Vm", "vcpu": "Vcpu", "off": "Off"}[strings.ToLower(v)]
		if m == "" {
			return c, o.convErr("core_scheduling", v)
		}
		c.CoreScheduling = m
	}
	return c, nil
}

func parseMemory(s string) (MemoryConfig, error) {
	o := newOptionSet("--memory", []string{"size", "file", "mergeable", "hotplug_method", "hotplug_size", "hotplugged_size", "shared", "hugepages", "hugepage_size", "prefault", "reserve", "thp"})
	m := MemoryConfig{}
	if err := o.parse(s, false); err != nil {
		return m, err
	}
	// "file" is registered but never read by MemoryConfig::parse: cloud-hypervisor ignores it,
	// and so does the translation.
	var err error
	size, ok, err := o.byteSized("size")
	if err != nil {
		return m, err
	}
	if !ok {
		size = 512 << 20
	}
	m.Size = size
	for key, dst := range map[string]**uint64{"hotplug_size": &m.HotplugSize, "hotplugged_size": &m.HotpluggedSize, "hugepage_size": &m.HugepageSize} {
		v, ok, err := o.byteSized(key)
		if err != nil {
			return m, err
		}
		if ok {
			*dst = &v
		}
	}
	m.HotplugMethod = "Acpi"
	if v, ok := o.str("hotplug_method"); ok {
		hm := map[string]string{"acpi": "Acpi", "virtio-mem": "VirtioMem"}[strings.ToLower(v)]
		if hm == "" {
			return m, o.convErr("hotplug_method", v)
		}
		m.HotplugMethod = hm
	}
	for _, b := range []struct {
		key string
		dst *bool
		def bool
	}{{"mergeable", &m.Mergeable, false}, {"shared", &m.Shared, false}, {"hugepages", &m.Hugepages, false},
		{"prefault", &m.Prefault, false}, {"reserve", &m.Reserve, false}, {"thp", &m.Thp, true}} {
		if *b.dst, err = o.toggle(b.key, b.def); err != nil {
			return m, err
		}
	}
	return m, nil
}

var rateLimiterKeys = []string{"bw_size", "bw_one_time_burst", "bw_refill_time", "ops_size", "ops_one_time_burst", "ops_refill_time"}

func parseDisk(s string) (DiskConfig, error) {
	own := append([]string{"path", "readonly", "direct", "queue_size", "num_queues", "vhost_user", "socket",
		"_disable_io_uring", "_disable_aio", "serial", "rate_limit_group", "queue_affinity", "backing_files",
		"sparse", "image_type", "lock_granularity"}, rateLimiterKeys...)
	o := newOptionSet("--disk", keys(own, pciIommuKeys))
	d := DiskConfig{}
	if err := o.parse(s, false); err != nil {
		return d, err
	}
	if err := o.refuse(append([]string{"queue_affinity", "_disable_io_uring", "_disable_aio"}, rateLimiterKeys...)...); err != nil {
		return d, err
	}
	var err error
	d.Path = o.strPtr("path")
	if d.Readonly, err = o.toggle("readonly", false); err != nil {
		return d, err
	}
	if d.Direct, err = o.toggle("direct", false); err != nil {
		return d, err
	}
	qs, err := o.uintOr("queue_size", 16, 128)
	if err != nil {
		return d, err
	}
	d.QueueSize = uint16(qs)
	if d.NumQueues, err = o.uintOr("num_queues", 64, 1); err != nil {
		return d, err
	}
	if d.VhostUser, err = o.toggle("vhost_user", false); err != nil {
		return d, err
	}
	d.VhostSocket = o.strPtr("socket")
	d.RateLimitGroup = o.strPtr("rate_limit_group")
	d.Serial = o.strPtr("serial")
	if d.BackingFiles, err = o.toggle("backing_files", false); err != nil {
		return d, err
	}
	d.ImageType = "Unknown"
	if d.VhostSocket == nil {
		if v, ok := o.str("image_type"); ok {
			it := map[string]string{"vmdk": "FlatVmdk", "vhd": "FixedVhd", "qcow2": "Qcow2", "raw": "Raw", "vhdx": "Vhdx"}[strings.ToLower(v)]
			if it == "" {
				return d, o.convErr("image_type", v)
			}
			d.ImageType = it
		}
	}
	d.LockGranularity = "ByteRange"
	if v, ok := o.str("lock_granularity"); ok {
		lg := map[string]string{"byte-range": "ByteRange", "full": "Full"}[v]
		if lg == "" {
			return d, o.convErr("lock_granularity", v)
		}
		d.LockGranularity = lg
	}
	if d.Sparse, err = o.toggle("sparse", true); err != nil {
		return d, err
	}
	d.PciCommon, err = parsePci(o)
	return d, err
}

// parseMAC is net_util MacAddr::parse_str: six colon-separated pairs of hex digits; the JSON
// form is lower case.
func parseMAC(o *optionSet, key string) (*string, error) {
	v, ok := o.str(key)
	if !ok {
		return nil, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) != 6 {
		return nil, o.convErr(key, v)
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789abcdefABCDEF") != "" {
			return nil, o.convErr(key, v)
		}
	}
	l := strings.ToLower(v)
	return &l, nil
}

// parseIP is Rust's IpAddr::from_str (no IPv6 zones).
func parseIP(o *optionSet, key string) (*string, error) {
	v, ok := o.str(key)
	if !ok {
		return nil, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return nil, o.convErr(key, v)
	}
	s := a.String()
	return &s, nil
}

func parseNet(s string) (NetConfig, error) {
	own := append([]string{"tap", "ip", "mask", "mac", "host_mac", "offload_tso", "offload_ufo", "offload_csum",
		"mtu", "queue_size", "num_queues", "vhost_user", "socket", "vhost_mode", "fd"}, rateLimiterKeys...)
	o := newOptionSet("--net", keys(own, pciIommuKeys))
	n := NetConfig{}
	if err := o.parse(s, false); err != nil {
		return n, err
	}
	if err := o.refuse(rateLimiterKeys...); err != nil {
		return n, err
	}
	var err error
	n.Tap = o.strPtr("tap")
	if n.IP, err = parseIP(o, "ip"); err != nil {
		return n, err
	}
	if n.Mask, err = parseIP(o, "mask"); err != nil {
		return n, err
	}
	if n.Mac, err = parseMAC(o, "mac"); err != nil {
		return n, err
	}
	if n.HostMac, err = parseMAC(o, "host_mac"); err != nil {
		return n, err
	}
	for _, b := range []struct {
		key string
		dst *bool
		def bool
	}{{"offload_tso", &n.OffloadTso, true}, {"offload_ufo", &n.OffloadUfo, true}, {"offload_csum", &n.OffloadCsum, true}, {"vhost_user", &n.VhostUser, false}} {
		if *b.dst, err = o.toggle(b.key, b.def); err != nil {
			return n, err
		}
	}
	if mtu, ok, err := o.uint("mtu", 16); err != nil {
		return n, err
	} else if ok {
		m := uint16(mtu)
		n.Mtu = &m
	}
	qs, err := o.uintOr("queue_size", 16, 256)
	if err != nil {
		return n, err
	}
	n.QueueSize = uint16(qs)
	if n.NumQueues, err = o.uintOr("num_queues", 64, 2); err != nil {
		return n, err
	}
	n.VhostSocket = o.strPtr("socket")
	n.VhostMode = "Client"
	if v, ok := o.str("vhost_mode"); ok {
		vm := map[string]string{"client": "Client", "server": "Server"}[strings.ToLower(v)]
		if vm == "" {
			return n, o.convErr("vhost_mode", v)
		}
		n.VhostMode = vm
	}
	fds, ok, err := o.integerList("fd", 31)
	if err != nil {
		return n, err
	}
	if ok {
		for _, fd := range fds {
			n.FDs = append(n.FDs, int(fd))
		}
	}
	n.PciCommon, err = parsePci(o)
	return n, err
}

func parseRng(s string) (RngConfig, error) {
	o := newOptionSet("--rng", keys([]string{"src"}, pciIommuKeys))
	r := RngConfig{Src: "/dev/urandom"}
	if err := o.parse(s, false); err != nil {
		return r, err
	}
	if v, ok := o.str("src"); ok {
		r.Src = v
	}
	var err error
	r.PciCommon, err = parsePci(o)
	return r, err
}

func parseBalloon(s string) (BalloonConfig, error) {
	o := newOptionSet("--balloon", keys([]string{"size", "deflate_on_oom", "free_page_reporting"}, pciIommuKeys))
	b := BalloonConfig{}
	if err := o.parse(s, false); err != nil {
		return b, err
	}
	var err error
	if b.Size, _, err = o.byteSized("size"); err != nil {
		return b, err
	}
	if b.DeflateOnOOM, err = o.toggle("deflate_on_oom", false); err != nil {
		return b, err
	}
	if b.FreePageReporting, err = o.toggle("free_page_reporting", false); err != nil {
		return b, err
	}
	b.PciCommon, err = parsePci(o)
	return b, err
}

// virtioFSTagLen is virtio-devices' VIRTIO_FS_TAG_LEN.
const virtioFSTagLen = 36

func parseFs(s string) (FsConfig, error) {
	o := newOptionSet("--fs", keys([]string{"tag", "queue_size", "num_queues", "socket"}, pciKeys))
	f := FsConfig{}
	if err := o.parse(s, false); err != nil {
		return f, err
	}
	tag, ok := o.str("tag")
	if !ok {
		return f, fmt.Errorf("--fs: tag= is missing")
	}
	if len(tag) > virtioFSTagLen {
		return f, fmt.Errorf("--fs: tag %q is longer than %d bytes", tag, virtioFSTagLen)
	}
	sock, ok := o.str("socket")
	if !ok {
		return f, fmt.Errorf("--fs: socket= is missing")
	}
	f.Tag, f.Socket = tag, sock
	qs, err := o.uintOr("queue_size", 16, 1024)
	if err != nil {
		return f, err
	}
	f.QueueSize = uint16(qs)
	if f.NumQueues, err = o.uintOr("num_queues", 64, 1); err != nil {
		return f, err
	}
	f.PciCommon, err = parsePci(o)
	return f, err
}

// parseConsole is SerialConfig::parse / ConsoleConfig::parse: the first of off, pty, tty, null,
// file=, socket= that is present decides the mode.
func parseConsole(what, s string, pci bool) (ConsoleCommon, PciCommon, error) {
	own := []string{"file", "socket"}
	if pci {
		own = keys(own, pciIommuKeys)
	}
	o := newOptionSet(what, own, "off", "pty", "tty", "null")
	var c ConsoleCommon
	var pc PciCommon
	if err := o.parse(s, false); err != nil {
		return c, pc, err
	}
	switch {
	case o.isSet("off"):
		c.Mode = "Off"
	case o.isSet("pty"):
		c.Mode = "Pty"
	case o.isSet("tty"):
		c.Mode = "Tty"
	case o.isSet("null"):
		c.Mode = "Null"
	case o.isSet("file"):
		c.Mode, c.File = "File", o.strPtr("file")
		if c.File == nil {
			return c, pc, fmt.Errorf("%s: file= needs a path", what)
		}
	case o.isSet("socket"):
		c.Mode, c.Socket = "Socket", o.strPtr("socket")
		if c.Socket == nil {
			return c, pc, fmt.Errorf("%s: socket= needs a path", what)
		}
	default:
		return c, pc, fmt.Errorf("%s %q: no mode given (off, null, pty, tty, file=, socket=)", what, s)
	}
	var err error
	if pci {
		pc, err = parsePci(o)
	}
	return c, pc, err
}

func parseDevice(s string) (DeviceConfig, error) {
	o := newOptionSet("--device", keys([]string{"path", "fd", "x_nv_gpudirect_clique", "x_exclude_mmap_bars"}, pciIommuKeys))
	d := DeviceConfig{}
	if err := o.parse(s, false); err != nil {
		return d, err
	}
	if o.isSet("fd") {
		return d, fmt.Errorf("%w: --device fd=: vm.create cannot carry a VFIO descriptor; use path=", ErrUnsupported)
	}
	if err := o.refuse("x_nv_gpudirect_clique", "x_exclude_mmap_bars"); err != nil {
		return d, err
	}
	d.Path = o.strPtr("path")
	var err error
	d.PciCommon, err = parsePci(o)
	return d, err
}

func parseVsock(s string) (VsockConfig, error) {
	o := newOptionSet("--vsock", keys([]string{"socket", "cid"}, pciIommuKeys))
	v := VsockConfig{}
	if err := o.parse(s, false); err != nil {
		return v, err
	}
	var err error
	if v.PciCommon, err = parsePci(o); err != nil {
		return v, err
	}
	sock, ok := o.str("socket")
	if !ok {
		return v, fmt.Errorf("--vsock: socket= is missing")
	}
	cid, ok, err := o.uint("cid", 32)
	if err != nil {
		return v, err
	}
	if !ok {
		return v, fmt.Errorf("--vsock: cid= is missing")
	}
	v.Socket, v.Cid = sock, uint32(cid)
	return v, nil
}

func parsePlatform(s string) (PlatformConfig, string, error) {
	strFields := []string{"system_manufacturer", "system_product_name", "system_version", "system_serial_number",
		"system_uuid", "system_sku_number", "system_family", "chassis_asset_tag"}
	o := newOptionSet("--platform", append([]string{"num_pci_segments", "iommu_segments", "iommu_address_width",
		"serial_number", "uuid", "oem_strings", "iommufd", "iommufd_fd", "vfio_p2p_dma"}, strFields...))
	pl := PlatformConfig{}
	if err := o.parse(s, false); err != nil {
		return pl, "", err
	}
	if o.isSet("iommufd_fd") {
		return pl, "", fmt.Errorf("%w: --platform iommufd_fd=: vm.create cannot carry a descriptor", ErrUnsupported)
	}
	n, err := o.uintOr("num_pci_segments", 16, 1)
	if err != nil {
		return pl, "", err
	}
	pl.NumPciSegments = uint16(n)
	segs, ok, err := o.integerList("iommu_segments", 64)
	if err != nil {
		return pl, "", err
	}
	if ok {
		for _, s := range segs {
			pl.IommuSegments = append(pl.IommuSegments, uint16(s)) // `as u16`, as cloud-hypervisor does
		}
	}
	w, err := o.uintOr("iommu_address_width", 8, 64)
	if err != nil {
		return pl, "", err
	}
	pl.IommuAddressWidthBits = uint8(w)
	if pl.Iommufd, err = o.toggle("iommufd", false); err != nil {
		return pl, "", err
	}
	if pl.VfioP2PDma, err = o.toggle("vfio_p2p_dma", true); err != nil {
		return pl, "", err
	}
	dst := map[string]**string{"system_manufacturer": &pl.SystemManufacturer, "system_product_name": &pl.SystemProductName,
		"system_version": &pl.SystemVersion, "system_serial_number": &pl.SystemSerialNumber, "system_uuid": &pl.SystemUUID,
		"system_sku_number": &pl.SystemSkuNumber, "system_family": &pl.SystemFamily, "chassis_asset_tag": &pl.ChassisAssetTag}
	for _, f := range strFields {
		*dst[f] = o.strPtr(f)
	}
	// The deprecated spellings fill in only what the new ones left empty.
	if pl.SystemSerialNumber == nil {
		pl.SystemSerialNumber = o.strPtr("serial_number")
	}
	if pl.SystemUUID == nil {
		pl.SystemUUID = o.strPtr("uuid")
	}
	oem, ok, err := o.stringList("oem_strings")
	if err != nil {
		return pl, "", err
	}
	var notify string
	if ok {
		pl.OemStrings = []string{}
		for i, s := range oem {
			switch {
			case strings.HasPrefix(s, NotifySocketPrefix):
				if notify != "" {
					return pl, "", fmt.Errorf("--platform oem_strings: vmm.notify_socket given twice")
				}
				notify = strings.TrimPrefix(s, NotifySocketPrefix)
			case strings.Contains(s, "io.systemd.credential"):
				// Anywhere in the element: quoting ("io.systemd.credential:…") or text before
				// it does not make a secret on a command line any less readable in /proc. Show
				// the name only: without a '=' the rest may be the value itself.
				name, _, found := strings.Cut(s[strings.Index(s, "io.systemd.credential"):], "=")
				if !found {
					name = "io.systemd.credential"
				}
				return pl, "", fmt.Errorf("--platform oem_strings: %s… is a systemd credential on a command line, readable in /proc by every local user: give it to host-launcher with --credential (secret) or --set (plain value) instead", name)
			case s == "":
				// cloud-hypervisor would take it (oem_strings=[] is one empty string) and write
				// an SMBIOS string set that ends there: strings after it would be lost.
				return pl, "", fmt.Errorf("--platform oem_strings: element %d is empty; an empty SMBIOS string ends the string set", i+1)
			default:
				pl.OemStrings = append(pl.OemStrings, s)
			}
		}
		if len(pl.OemStrings) == 0 {
			pl.OemStrings = nil
		}
	}
	return pl, notify, nil
}
