package main

// guards are the security checks whose removal a test must notice. Each disables one check by
// replacing Old with New; Old must occur exactly once in the non-test Go files of the tree, so a
// guard that moved or changed fails the run instead of silently testing nothing. When code
// changes, update Old (and New) here: the message names the guard.
//
// Packages are the tests run against the mutant (the package the guard lives in is always
// added): the ones expected to catch it, kept few so that the run stays fast.
var guards = []guard{
	{
		Name:     "report MAC",
		Why:      "the host believes only reports MACed under the launch key and this exchange's nonce",
		Old:      "if err := open(s.Key, labelReport, nonce, payload, &r); err != nil {",
		New:      "if err := decodeStrict(payload[min(len(payload), 32):], &r); err != nil {",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "verdict MAC",
		Why:      "the agent believes only verdicts MACed under the launch key and its nonce",
		Old:      "if err := open(c.Key, labelVerdict, ch.Nonce, payload, &v); err != nil {",
		New:      "if err := decodeStrict(payload[min(len(payload), 32):], &v); err != nil {",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "nonce single use",
		Why:      "a challenge answers one report; a second report under it is unchallenged",
		Old:      "\t\t\tnonce = nil\n\t\t\tif !resync {",
		New:      "\t\t\tif !resync {",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "nonce freshness",
		Why:      "every challenge carries a new random nonce, so a recorded report cannot be replayed",
		Old:      "_, _ = rand.Read(nonce)",
		New:      "_, _ = rand.Read(nonce[:0])",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "hello MAC (proof of the key)",
		Why:      "the host challenges only a hello MACed under the launch key",
		Old:      "if !hmac.Equal(h.MAC, HelloMAC(s.Key, h.Nonce, h.BootID)) {",
		New:      "if false && !hmac.Equal(h.MAC, HelloMAC(s.Key, h.Nonce, h.BootID)) {",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "report fields validated",
		Why:      "an authentic report's text (names, statuses, VM) is checked before any of it is repeated",
		Old:      "if err := validateReport(&r); err != nil {",
		New:      "if err := validateReport(&r); false && err != nil {",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "notification fields refuse control characters",
		Why:      "a newline in a value would let its author add READY=1 or MAINPID= to the datagram",
		Old:      "return r < 0x20 || r == 0x7f }); i >= 0 {",
		New:      "return r < 0x20 || r == 0x7f }); false && i >= 0 {",
		Packages: []string{"./pkg/sdnotify"},
	},
	{
		Name:     "vsock CID check",
		Why:      "only the VM's own CID may talk to its launcher's vsock port",
		Old:      "if a, ok := c.RemoteAddr().(*vsock.Addr); ok && a.ContextID == f.CID {",
		New:      "if _, ok := c.RemoteAddr().(*vsock.Addr); ok {",
		Packages: []string{"./pkg/listen"},
	},
	{
		Name:     "per-credential MAC",
		Why:      "the host compares each credential's MAC, not only its length",
		Old:      "case !hmac.Equal(g.MAC, mac(c.Name, c.Value.Bytes())) || g.Bytes != c.Value.Len():",
		New:      "case g.Bytes != c.Value.Len() || mac == nil:", // mac stays used; never nil
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "reported length",
		Why:      "the host compares the length the guest reports with the length sent",
		Old:      "case !hmac.Equal(g.MAC, mac(c.Name, c.Value.Bytes())) || g.Bytes != c.Value.Len():",
		New:      "case !hmac.Equal(g.MAC, mac(c.Name, c.Value.Bytes())):",
		Packages: []string{"./pkg/ack"},
	},
	{
		Name:     "manifest length (bytes)",
		Why:      "the guest checks a credential's exact byte length against the manifest",
		Old:      "case r.Bytes != nil && n != *r.Bytes:",
		New:      "case false && r.Bytes != nil && n != *r.Bytes:",
		Packages: []string{"./pkg/verify"},
	},
	{
		Name:     "manifest length (range)",
		Why:      "the guest checks min_bytes/max_bytes",
		Old:      "case r.MinBytes != nil && n < *r.MinBytes, r.MaxBytes != nil && n > *r.MaxBytes:",
		New:      "case false:",
		Packages: []string{"./pkg/verify"},
	},
	{
		Name:     "manifest: unknown field",
		Why:      "a misspelt top-level field is an error, not ignored",
		Old:      "default:\n\t\t\treturn p.errf(at, \"unknown field\")",
		New:      "default:\n\t\t\treturn p.d.SkipValue()",
		Packages: []string{"./pkg/manifest"},
	},
	{
		Name:     "manifest: unknown rule field",
		Why:      `a misspelt rule ("byte": 44) is an error, not a rule that checks nothing`,
		Old:      `return p.errf(fat, "unknown field")`,
		New:      `return p.d.SkipValue()`,
		Packages: []string{"./pkg/manifest"},
	},
	{
		Name:     "manifest: duplicate credential",
		Why:      "a credential listed twice is an error, not last-wins",
		Old:      "if _, dup := m.Credentials[name]; dup {",
		New:      "if _, dup := m.Credentials[name]; false && dup {",
		Packages: []string{"./pkg/manifest"},
	},
	{
		Name:     "manifest: duplicate rule field",
		Why:      `a rule field given twice ("bytes": 1, "bytes": 2) is an error, not last-wins`,
		Old:      "if seen&(1<<i) != 0 {",
		New:      "if false && seen&(1<<i) != 0 {",
		Packages: []string{"./pkg/manifest"},
	},
	{
		Name:     "--vm-config: duplicate key",
		Why:      "a cloud-hypervisor VmConfig key given twice is refused, not last-wins",
		Old:      "if seen[key] {\n\t\t\treturn fmt.Errorf(\"%s.%s is given twice",
		New:      "if false && seen[key] {\n\t\t\treturn fmt.Errorf(\"%s.%s is given twice",
		Packages: []string{"./pkg/launch"},
	},
	{
		Name:     "secret redaction (credential.Value)",
		Why:      "every way Go prints or encodes a Value shows only its length",
		Old:      `func (v Value) redacted() string { return "[redacted " + strconv.Itoa(v.Len()) + " bytes]" }`,
		New:      `func (v Value) redacted() string { _ = strconv.Itoa; return string(v.Bytes()) }`,
		Packages: []string{"./pkg/credential"},
	},
	{
		Name:     "secret redaction (agent log)",
		Why:      "the agent logs the value of non-secret credentials only",
		Old:      "if !f.Secret && f.Value.Len() > 0 && f.Status != credential.StatusUnexpected {",
		New:      "if f.Value.Len() > 0 {",
		Packages: []string{"./pkg/agent"},
	},
	{
		Name:     "agent readiness gate",
		Why:      "the agent sends READY=1 only when verification passed",
		Old:      "\tif res.OK && first {\n\t\t_ = d.notify(\"READY=1",
		New:      "\tif first {\n\t\t_ = d.notify(\"READY=1",
		Packages: []string{"./pkg/agent"},
	},
	{
		Name:     "launcher: READY=1 only on acceptance",
		Why:      "an authentic rejection fails the launch; it never becomes READY=1",
		Old:      "\t\t\tcase r.Accepted:\n\t\t\t\tout.Accepted = &r",
		New:      "\t\t\tcase true:\n\t\t\t\tout.Accepted = &r",
		Packages: []string{"./pkg/launch"},
	},
	{
		Name:     "launcher: unauthenticated reports ignored",
		Why:      "junk on the ack channel can neither pass nor fail a launch",
		Old:      "\t\t\tcase !r.Authenticated:\n\t\t\t\t// ack.Server has logged it",
		New:      "\t\t\tcase false:\n\t\t\t\t// ack.Server has logged it",
		Packages: []string{"./pkg/launch"},
	},
	{
		Name:     "launcher: waits for the guest's READY=1",
		Why:      "with --wait-guest-boot READY=1 follows the guest systemd's own READY=1",
		Old:      "if out.Accepted != nil && out.Accepted.Accepted && guestReady {",
		New:      "if out.Accepted != nil && out.Accepted.Accepted {",
		Packages: []string{"./pkg/launch"},
	},
	{
		Name:      "launcher non-dumpable",
		Why:       "the launcher holding the secrets cannot be ptraced or core-dumped",
		Old:       "if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {\n\t\treturn fmt.Errorf(\"PR_SET_DUMPABLE",
		New:       "if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {\n\t\treturn fmt.Errorf(\"PR_SET_DUMPABLE",
		Packages:  []string{"./cmd/host-launcher"},
		Run:       "TestNonDumpable",
		NeedsRoot: true,
	},
}
