package ack

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// KeySize is the size of credlink.key, the per-launch MAC key.
const KeySize = 32

// NonceSize is the size of hello and challenge nonces.
const NonceSize = 16

// Domain separation labels: a MAC made for one purpose never verifies for another.
const (
	labelCredential = "credlink/v1 credential"
	labelHello      = "credlink/v1 hello"
	labelReport     = "credlink/v1 report"
	labelVerdict    = "credlink/v1 verdict"
)

// Errors of message handling.
var (
	ErrBadKey     = errors.New("credlink.key must be 32 bytes")
	ErrBadMAC     = errors.New("MAC does not verify")
	ErrBadMessage = errors.New("malformed message")
)

// Hello opens an exchange. Its nonce comes back in the challenge, so that on a stream transport
// the agent can tell the answer to this hello from a stale one. Its MAC (HelloMAC) proves
// possession of the key in the first frame: the host keeps a connection whose hello verifies
// out of reach of a flood, and closes one whose hello does not at once (see Server.Serve).
type Hello struct {
	Nonce  []byte `json:"nonce"`
	BootID string `json:"boot_id"`
	MAC    []byte `json:"mac"`
}

// HelloMAC is HMAC-SHA256(key, len‖"credlink/v1 hello", len‖nonce, len‖boot id). A recorded
// hello can be replayed, but only by someone who can read the agent's traffic, and it earns no
// more than a challenge: the report still needs the key.
func HelloMAC(key, nonce []byte, bootID string) []byte {
	return messageMAC(key, labelHello, nonce, []byte(bootID))
}

// Challenge carries the host's single-use nonce for the report that follows.
type Challenge struct {
	HelloNonce []byte `json:"hello_nonce"`
	Nonce      []byte `json:"nonce"`
}

// CredentialReport is the agent's finding for one credential. MAC proves the exact bytes without
// revealing them: HMAC-SHA256(key, label, name, value), see CredentialMAC.
type CredentialReport struct {
	Name   string            `json:"name"`
	Bytes  int               `json:"bytes"`
	Status credential.Status `json:"status"` // from the guest: only credential.Statuses may be echoed
	Source string            `json:"source,omitempty"`
	MAC    []byte            `json:"mac,omitempty"` // absent when the credential is missing
}

// Report is what the agent sends. The host's nonce binds it to one exchange.
type Report struct {
	Version     int                `json:"version"`
	Nonce       []byte             `json:"nonce"`
	VM          string             `json:"vm,omitempty"`
	BootID      string             `json:"boot_id"`
	Agent       string             `json:"agent"`
	OK          bool               `json:"ok"`
	Credentials []CredentialReport `json:"credentials"`
}

// Verdict is the host's answer. It is MACed under the same key and nonce, so the agent only
// believes answers from the launcher that holds the key.
type Verdict struct {
	Nonce    []byte   `json:"nonce"`
	Accepted bool     `json:"accepted"`
	Reasons  []string `json:"reasons,omitempty"`
	NewBoot  bool     `json:"new_boot,omitempty"`
}

func lengthPrefixed(h interface{ Write([]byte) (int, error) }, parts ...[]byte) {
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
}

// CredentialMAC is HMAC-SHA256 over the domain label, the name and the value, each
// length-prefixed so that no two (name, value) pairs share an input.
func CredentialMAC(key []byte, name string, value []byte) []byte {
	return NewCredentialMAC(key)(name, value)
}

// NewCredentialMAC returns CredentialMAC under key for many credentials: one HMAC state, reset
// between them, so its keyed pads are hashed once instead of once per credential (half the
// SHA-256 blocks for short values; a report of 253 credentials is built on the agent's path to
// its acknowledgement). The function is not safe for concurrent use.
func NewCredentialMAC(key []byte) func(name string, value []byte) []byte {
	m := hmac.New(sha256.New, key)
	return func(name string, value []byte) []byte {
		m.Reset()
		lengthPrefixed(m, []byte(labelCredential), []byte(name), value)
		return m.Sum(nil)
	}
}

func messageMAC(key []byte, label string, nonce, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	lengthPrefixed(m, []byte(label), nonce, body)
	return m.Sum(nil)
}

// sealed is MAC || body, the payload of reports and verdicts.
func seal(key []byte, label string, nonce []byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(messageMAC(key, label, nonce, body), body...), nil
}

// open verifies a sealed payload in constant time before anything of it is parsed.
func open(key []byte, label string, nonce, payload []byte, v any) error {
	if len(payload) < sha256.Size {
		return fmt.Errorf("%w: %d-byte payload", ErrBadMessage, len(payload))
	}
	mac, body := payload[:sha256.Size], payload[sha256.Size:]
	if !hmac.Equal(mac, messageMAC(key, label, nonce, body)) {
		return ErrBadMAC
	}
	return decodeStrict(body, v)
}

// maxDecodeError bounds the decoder's message in decodeStrict's error, in bytes.
const maxDecodeError = 200

// decodeStrict parses JSON refusing unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		// encoding/json repeats what it trips on (a whole unknown key, a whole string): the
		// peer's text, as long as the frame, bound for a log line.
		return fmt.Errorf("%w: %s", ErrBadMessage, sdnotify.Text(err.Error(), maxDecodeError))
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	return nil
}

func checkKey(key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("%w (got %d)", ErrBadKey, len(key))
	}
	return nil
}
