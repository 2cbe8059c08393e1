package ack

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func FuzzFrameReader(f *testing.F) {
	f.Add(appendFrame(nil, TypeHello, []byte(`{"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","boot_id":"b"}`)), true)
	f.Add(append([]byte("garbageCLAK\x01"), appendFrame(nil, TypeReport, make([]byte, 40))...), true)
	f.Add(appendFrame(nil, TypeVerdict, nil)[:10], false)
	// A torn frame: a header announcing 10 KB, 100 bytes of it, then a whole hello.
	torn := appendFrame(nil, TypeReport, make([]byte, 10240))[:headerLen+100]
	f.Add(append(torn, appendFrame(nil, TypeHello, []byte(`{}`))...), true)
	f.Fuzz(func(t *testing.T, data []byte, resync bool) {
		fr := NewFrameReader(bytes.NewReader(data), resync)
		consumed := 0
		for {
			typ, payload, err := fr.Next()
			if err != nil {
				if !resync && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameLarge) && !errors.Is(err, ErrVersion) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(payload) > MaxPayload {
				t.Fatal("payload over the limit")
			}
			// Every frame returned re-encodes to bytes present in the input.
			if !bytes.Contains(data, appendFrame(nil, typ, payload)) {
				t.Fatal("returned a frame that is not in the input")
			}
			consumed += headerLen + len(payload) + trailerLen
		}
		if consumed+fr.Skipped > len(data) {
			t.Fatalf("consumed %d + skipped %d > %d input bytes", consumed, fr.Skipped, len(data))
		}
	})
}

// FuzzServerCheck feeds arbitrary report payloads to the host's verifier, with the right key and
// nonce (so that the MAC passes and the JSON parser and checks run) and without.
func FuzzServerCheck(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	nonce := bytes.Repeat([]byte{9}, NonceSize)
	f.Add([]byte(`{"version":1,"nonce":"CQkJCQkJCQkJCQkJCQkJCQ==","boot_id":"b","agent":"a","ok":true,"credentials":[{"name":"API_KEY","bytes":27,"status":"ok","mac":"AA=="}]}`), true)
	f.Add([]byte(`{"version":1,"credentials":null}`), true)
	// Passes validateReport (32-byte MAC, known status and source), so the comparison runs.
	f.Add([]byte(`{"version":1,"nonce":"CQkJCQkJCQkJCQkJCQkJCQ==","vm":"vm1","boot_id":"b-1","agent":"a","ok":false,"credentials":[{"name":"API_KEY","bytes":27,"status":"wrong_length","source":"smbios","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"name":"X","bytes":0,"status":"missing"}]}`), true)
	f.Add([]byte(`{"version":1,"boot_id":"b","credentials":[{"name":"A\nREADY=1","status":"ok\nMAINPID=1"}]}`), true)
	f.Add([]byte("not json"), false)
	f.Fuzz(func(t *testing.T, body []byte, sealIt bool) {
		s := &Server{Key: key, Sent: sent, VM: "vm1"}
		payload := body
		if sealIt {
			payload = append(messageMAC(key, labelReport, nonce, body), body...)
		}
		res := s.check(payload, nonce)
		if !sealIt && res.Authenticated {
			t.Fatal("unsealed payload authenticated")
		}
		if res.Accepted {
			t.Fatal("fuzzed report accepted without the credentials' MACs")
		}
		if !res.Accepted && len(res.Reasons) == 0 {
			t.Fatal("rejected without a reason")
		}
		// Whatever the guest sent, the reasons (STATUS= and log text) hold no control bytes.
		for _, r := range res.Reasons {
			if strings.ContainsFunc(r, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				t.Fatalf("reason with a control character: %q", r)
			}
		}
	})
}
