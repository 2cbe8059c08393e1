package regfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// within runs f and fails the test if it has not returned after d: a reader that blocks on a
// FIFO must fail the test, not hang it.
func within(t *testing.T, d time.Duration, f func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() { b, err := f(); done <- res{b, err} }()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
		return nil, nil
	}
}

// limit is the bound the tests read with.
const limit = 1 << 20

func TestRead(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok"), []byte("value\x00\xff"), 0o400)
	os.WriteFile(filepath.Join(dir, "max"), bytes.Repeat([]byte("m"), limit), 0o400)
	os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("b"), limit+1), 0o400)
	os.Symlink("ok", filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tests := []struct {
		name string
		want []byte
		err  error
	}{
		{"ok", []byte("value\x00\xff"), nil},
		{"max", bytes.Repeat([]byte("m"), limit), nil},
		{"big", nil, ErrTooLarge},
		{"link", nil, ErrNotRegular},
		{"sub", nil, ErrNotRegular},
		{"fifo", nil, ErrNotRegular},
		{"../escape", nil, nil}, // any error: os.Root refuses to leave dir
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := within(t, 5*time.Second, func() ([]byte, error) { return Read(root, tt.name, limit) })
			switch {
			case tt.want != nil && (err != nil || !bytes.Equal(b, tt.want)):
				t.Errorf("got %d bytes, %v", len(b), err)
			case tt.want == nil && tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("err = %v, want %v", err, tt.err)
			case tt.want == nil && err == nil:
				t.Errorf("read %d bytes, want an error", len(b))
			}
		})
	}
}

// A FIFO swapped in after Read's Lstat must be refused at once, not block open(2) waiting for
// a writer: Read's own open and check on the open file, without the Lstat.
func TestReadOpenRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	read := func() ([]byte, error) {
		f, err := open(root, "fifo")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readOpen(f, limit)
	}
	if _, err := within(t, 5*time.Second, read); !errors.Is(err, ErrNotRegular) {
		t.Errorf("err = %v, want %v", err, ErrNotRegular)
	}
}

// ReadPath follows an operator's symlink to a regular file, and refuses a FIFO at once.
func TestReadPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o400)
	os.Symlink(filepath.Join(dir, "file"), filepath.Join(dir, "link"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPath(filepath.Join(dir, "link"), limit); err != nil || string(b) != "x" {
		t.Errorf("symlink: %q %v", b, err)
	}
	if _, err := within(t, 5*time.Second, func() ([]byte, error) { return ReadPath(filepath.Join(dir, "fifo"), limit) }); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	if _, err := ReadPath(filepath.Join(dir, "nope"), limit); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
