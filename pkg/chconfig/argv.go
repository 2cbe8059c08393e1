package chconfig

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported marks valid cloud-hypervisor input that host-launcher does not translate.
var ErrUnsupported = errors.New("not supported")

// argKind is how clap takes an option's values (cloud-hypervisor/src/main.rs
// get_cli_options_sorted).
type argKind int

const (
	argOne  argKind = iota // num_args(1) or a default value: exactly one, once
	argMany                // num_args(1..) + Append: one or more per occurrence, repeatable
	argFlag                // num_args(0) SetTrue
)

// role is what host-launcher does with an option.
type role int

const (
	roleVM          role = iota // translated into the VmConfig
	roleVMM                     // kept on the cloud-hypervisor process
	roleAPISocket               // becomes the filtered API proxy
	roleUnsupported             // refused
)

type optSpec struct {
	kind argKind
	role role
	why  string // for roleUnsupported
}

// dbusWhy: cloud-hypervisor's D-Bus API (vmm/src/api/dbus/mod.rs, feature dbus_api) answers
// vm_info with the whole VmConfig, OEM strings (credentials) included, and offers vm_snapshot,
// vm_coredump and migration; neither the 0700 runtime directory nor the API proxy's filter
// covers it.
const dbusWhy = "the D-Bus API is a second, unfiltered API (vm_info returns every credential)"

// verboseWhy: at Info level and above cloud-hypervisor logs every API request with its body
// (vmm/src/api/mod.rs, VmCreate::request: info!("API request event: VmCreate {config:?}"); the
// derived Debug prints platform.oem_strings, i.e. every credential and credlink.key) to stderr
// or --log-file. One -v is Info (cloud-hypervisor/src/main.rs start_vmm), so every -v is
// refused; at the default level (Warn) no request body is logged.
const verboseWhy = "at Info level and above cloud-hypervisor logs the vm.create body, every credential included (vmm/src/api/mod.rs VmCreate)"

// options lists every long option of cloud-hypervisor's CLI (default features plus the
// optional dbus/gdb/igvm/sev_snp/fw_cfg/ivshmem/pvmemcontrol ones, which we refuse or pass on).
var options = map[string]optSpec{
	"api-socket":         {argOne, roleAPISocket, ""},
	"balloon":            {argOne, roleVM, ""},
	"cmdline":            {argOne, roleVM, ""},
	"console":            {argOne, roleVM, ""},
	"cpus":               {argOne, roleVM, ""},
	"dbus-object-path":   {argOne, roleUnsupported, dbusWhy},
	"dbus-service-name":  {argOne, roleUnsupported, dbusWhy},
	"dbus-system-bus":    {argFlag, roleUnsupported, dbusWhy},
	"debug-console":      {argOne, roleUnsupported, "the debug console is not translated"},
	"device":             {argMany, roleVM, ""},
	"disk":               {argMany, roleVM, ""},
	"event-monitor":      {argOne, roleVMM, ""},
	"firmware":           {argOne, roleVM, ""},
	"fs":                 {argMany, roleVM, ""},
	"fw-cfg-config":      {argOne, roleUnsupported, "fw_cfg items are not translated"},
	"gdb":                {argOne, roleUnsupported, "a gdb stub needs cloud-hypervisor to own the VM from its command line"},
	"generic-vhost-user": {argMany, roleUnsupported, "generic vhost-user devices are not translated"},
	"igvm":               {argOne, roleUnsupported, "IGVM payloads are not translated"},
	"host-data":          {argOne, roleUnsupported, "SEV-SNP host data is not translated"},
	"initramfs":          {argOne, roleVM, ""},
	"ivshmem":            {argOne, roleUnsupported, "ivshmem is not translated"},
	"kernel":             {argOne, roleVM, ""},
	"landlock":           {argFlag, roleVM, ""},
	"landlock-rules":     {argMany, roleUnsupported, "landlock rules are not translated"},
	"log-file":           {argOne, roleVMM, ""},
	"log-format":         {argOne, roleVMM, ""},
	"memory":             {argOne, roleVM, ""},
	"memory-zone":        {argMany, roleUnsupported, "memory zones are not translated"},
	"net":                {argMany, roleVM, ""},
	"no-shutdown":        {argFlag, roleVMM, ""},
	"numa":               {argMany, roleUnsupported, "NUMA nodes are not translated"},
	"pci-segment":        {argMany, roleUnsupported, "PCI segment weights are not translated"},
	"platform":           {argOne, roleVM, ""},
	"pmem":               {argMany, roleUnsupported, "pmem devices are not translated"},
	"pvmemcontrol":       {argFlag, roleUnsupported, "pvmemcontrol is not translated"},
	"pvpanic":            {argFlag, roleVM, ""},
	"rate-limit-group":   {argMany, roleUnsupported, "rate limit groups are not translated"},
	"restore":            {argOne, roleUnsupported, "a restored VM is not created with vm.create, so host-launcher cannot add the credentials"},
	"rng":                {argOne, roleVM, ""},
	"rtc":                {argOne, roleUnsupported, "the virtio RTC is not translated"},
	"seccomp":            {argOne, roleVMM, ""},
	"serial":             {argOne, roleVM, ""},
	"tpm":                {argOne, roleUnsupported, "TPM devices are not translated"},
	"user-device":        {argMany, roleUnsupported, "vfio-user devices are not translated"},
	"vdpa":               {argMany, roleUnsupported, "vDPA devices are not translated"},
	"version":            {argFlag, roleUnsupported, "it does not start a VM"},
	"help":               {argFlag, roleUnsupported, "it does not start a VM"},
	"vsock":              {argOne, roleVM, ""},
	"watchdog":           {argFlag, roleVM, ""},
}

// occurrence is one option as given, for VMMArgs and error messages.
type occurrence struct {
	name   string
	values []string
	tokens []string // the argv tokens it came from, verbatim
}

// parsedArgv maps option names to their values in order.
type parsedArgv struct {
	values  map[string][]string
	flags   map[string]bool
	vmmArgs []string
	order   []occurrence
}

// splitArgv applies clap's rules as cloud-hypervisor configures them. It refuses positional
// arguments, unknown options, a single-value option given twice, a missing value and a value
// starting with "-" (clap would take it for an option).
func splitArgv(argv []string) (*parsedArgv, error) {
	p := &parsedArgv{values: map[string][]string{}, flags: map[string]bool{}}
	for i := 0; i < len(argv); i++ {
		tok := argv[i]
		switch {
		case tok == "--":
			if i+1 < len(argv) {
				return nil, fmt.Errorf("cloud-hypervisor takes no positional arguments (got %q after --)", argv[i+1])
			}
			continue
		case tok == "-h":
			return nil, fmt.Errorf("%w: -h: it does not start a VM", ErrUnsupported)
		case tok == "-V":
			return nil, fmt.Errorf("%w: -V: it does not start a VM", ErrUnsupported)
		case len(tok) > 1 && tok[0] == '-' && tok[1] != '-':
			if strings.Trim(tok[1:], "v") != "" {
				return nil, fmt.Errorf("unknown cloud-hypervisor option %q", tok)
			}
			return nil, fmt.Errorf("%w: %s: %s", ErrUnsupported, tok, verboseWhy)
		case !strings.HasPrefix(tok, "--"):
			return nil, fmt.Errorf("cloud-hypervisor takes no positional arguments (got %q)", tok)
		}
		name, inline, hasInline := strings.Cut(tok[2:], "=")
		spec, ok := options[name]
		if !ok {
			return nil, fmt.Errorf("unknown cloud-hypervisor option --%s", name)
		}
		if spec.role == roleUnsupported {
			return nil, fmt.Errorf("%w: --%s: %s; use --vm-config with a VmConfig JSON, or run cloud-hypervisor without credlink", ErrUnsupported, name, spec.why)
		}
		occ := occurrence{name: name, tokens: []string{tok}}
		switch spec.kind {
		case argFlag:
			if hasInline {
				return nil, fmt.Errorf("--%s takes no value (got %q)", name, tok)
			}
			if p.flags[name] {
				return nil, fmt.Errorf("--%s given twice", name)
			}
			p.flags[name] = true
		case argOne, argMany:
			if spec.kind == argOne && len(p.values[name]) > 0 {
				return nil, fmt.Errorf("--%s given twice (cloud-hypervisor accepts it once)", name)
			}
			if hasInline {
				occ.values = []string{inline}
				if spec.kind == argMany && i+1 < len(argv) && !isOption(argv[i+1]) {
					return nil, fmt.Errorf("--%s=…: ambiguous: %q follows it; write --%s VALUE VALUE… or one --%s=VALUE per value", name, argv[i+1], name, name)
				}
			} else {
				for i+1 < len(argv) && !isOption(argv[i+1]) {
					i++
					occ.values = append(occ.values, argv[i])
					occ.tokens = append(occ.tokens, argv[i])
					if spec.kind == argOne {
						break
					}
				}
				if len(occ.values) == 0 {
					return nil, fmt.Errorf("--%s needs a value", name)
				}
			}
			p.values[name] = append(p.values[name], occ.values...)
		}
		if spec.role == roleVMM {
			p.vmmArgs = append(p.vmmArgs, occ.tokens...)
		}
		p.order = append(p.order, occ)
	}
	return p, nil
}

// isOption is clap's test for "this token starts a new argument": anything but "-" itself
// that starts with a dash.
func isOption(tok string) bool { return len(tok) > 1 && tok[0] == '-' }

func (p *parsedArgv) one(name, def string) string {
	if v := p.values[name]; len(v) > 0 {
		return v[0]
	}
	return def
}

func (p *parsedArgv) has(name string) bool { return len(p.values[name]) > 0 }
