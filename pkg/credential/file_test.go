package credential

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

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok"), []byte("value\x00\xff"), 0o400)
	os.WriteFile(filepath.Join(dir, "max"), bytes.Repeat([]byte("m"), MaxSize), 0o400)
	os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("b"), MaxSize+1), 0o400)
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
		{"max", bytes.Repeat([]byte("m"), MaxSize), nil},
		{"big", nil, ErrTooLarge},
		{"link", nil, ErrNotRegular},
		{"sub", nil, ErrNotRegular},
		{"fifo", nil, ErrNotRegular},
		{"../escape", nil, nil}, // any error: os.Root refuses to leave dir
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := within(t, 5*time.Second, func() ([]byte, error) { return ReadFile(root, tt.name) })
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

// A FIFO swapped in after ReadFile's Lstat must be refused at once by the check on the open
// file, not block open(2) waiting for a writer.
func TestReadRegularRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := within(t, 5*time.Second, func() ([]byte, error) { return readRegular(root, "fifo") }); !errors.Is(err, ErrNotRegular) {
		t.Errorf("err = %v, want %v", err, ErrNotRegular)
	}
}
