// Package filekind names the kind of a file in error messages ("a directory", "a named pipe
// (FIFO)"), for the readers that refuse anything but regular files: a Go file mode printed as is
// reads "d---------".
package filekind

import "io/fs"

// Of names the kind of file a mode describes, with its article: "a regular file",
// "a directory", "a named pipe (FIFO)", ...
func Of(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}
