module github.com/kickstand/kickstand/bench/tftp/pinftpd

go 1.26.8

require github.com/pin/tftp/v3 v3.1.0

require (
	golang.org/x/net v0.0.0-20200202094626-16171245cfb2 // indirect
	golang.org/x/sys v0.0.0-20190215142949-d0b11bdaac8a // indirect
)
