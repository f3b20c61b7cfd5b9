package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes the directory's lock file with flock, which the kernel drops
// when the process dies, so a stale file never blocks a restart. A second
// open file of the same process conflicts too, so two Stores of one process
// cannot share a directory either. The file holds the holder's pid, for the
// error message only.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := ""
			if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				holder = " (pid " + strings.TrimSpace(string(b)) + ")"
			}
			return nil, fmt.Errorf("store directory %s is in use by another regwebhook process%s", dir, holder)
		}
		return nil, fmt.Errorf("open store in %s: lock %s: %w", dir, path, err)
	}
	// Best effort: the pid only helps the message above.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockDir releases the lock taken by lockDir. The file stays: removing it
// could race with another process that opened it and waits to lock it.
func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil { // closing the last descriptor drops the flock
		return fmt.Errorf("release lock %s: %w", f.Name(), err)
	}
	return nil
}
