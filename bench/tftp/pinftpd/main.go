// Command pinftpd serves a directory with github.com/pin/tftp/v3, the
// library kickstand's own TFTP server was measured against. It is a
// separate module so the library never enters kickstand's dependencies.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pin/tftp/v3"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	listen := flag.String("listen", "127.0.0.1:6969", "UDP address to listen on")
	flag.Parse()
	dir, err := os.OpenRoot(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pinftpd:", err)
		os.Exit(1)
	}
	read := func(name string, rf io.ReaderFrom) error {
		f, err := dir.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			rf.(tftp.OutgoingTransfer).SetSize(st.Size())
		}
		_, err = rf.ReadFrom(f)
		return err
	}
	s := tftp.NewServer(read, nil)
	fmt.Println("listening on", *listen)
	if err := s.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "pinftpd:", err)
		os.Exit(1)
	}
}
