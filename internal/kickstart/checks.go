package kickstart

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// The checks in this file are what pykickstart's parse() methods verify
// after argparse has accepted a line. Each cites the class it mirrors; the
// wording of every message is pykickstart's so the output matches
// ksvalidator's.

// check runs the command-specific rules. For parse_known_args commands
// without a specific rule, leftover words are "Unexpected arguments".
func (c *cmdCtx) check() *parseError {
	if f, ok := commandChecks[c.name]; ok {
		return f(c)
	}
	if c.spec.style == styleKnown && len(c.res.extra) > 0 {
		return c.unexpected(c.name)
	}
	return nil
}

var commandChecks = map[string]func(*cmdCtx) *parseError{
	"auth":        checkAuthconfig,
	"authconfig":  checkAuthconfig,
	"timezone":    checkTimezone,
	"keyboard":    checkKeyboard,
	"rootpw":      checkRootpw,
	"lang":        checkLang,
	"key":         checkKey,
	"device":      checkDevice,
	"eula":        checkEula,
	"network":     checkNetwork,
	"part":        checkPartition,
	"partition":   checkPartition,
	"logvol":      checkLogvol,
	"raid":        checkRaid,
	"volgroup":    checkVolgroup,
	"autopart":    checkAutopart,
	"btrfs":       checkBtrfs,
	"url":         checkURL,
	"timesource":  checkTimesource,
	"user":        dupCheck("user", "name", "A user with the name %s has already been defined."),
	"group":       dupCheck("group", "name", "A group with the name %s has already been defined."),
	"repo":        checkRepo,
	"services":    checkServices,
	"ignoredisk":  checkIgnoredisk,
	"logging":     checkLogging,
	"harddrive":   checkHarddrive,
	"bootloader":  checkBootloader,
	"sshkey":      checkSshkey,
	"sshpw":       checkSshpw,
	"driverdisk":  checkDriverdisk,
	"mount":       checkMount,
	"module":      checkModule,
	"syspurpose":  checkNoPositional("The syspurpose command does not take positional arguments!"),
	"rescue":      checkRescue,
	"iscsiname":   knownUnexpected("iscsiname"),
	"updates":     checkUpdates,
	"cmdline":     checkDisplayMode,
	"install":     checkInstall,
	"upgrade":     checkInstall,
	"dmraid":      checkDmraid,
	"fcoe":        checkFcoe,
	"multipath":   checkMultipath,
	"nvdimm":      checkNvdimm,
	"ostreesetup": checkOSTreeSetup,
	"realm":       checkRealm,
	"rhsm":        checkRHSM,
	"snapshot":    checkSnapshot,
	"zfcp":        checkZFCP,
}

func knownUnexpected(name string) func(*cmdCtx) *parseError {
	return func(c *cmdCtx) *parseError {
		if len(c.res.extra) > 0 {
			return c.unexpected(name)
		}
		return nil
	}
}

func checkNoPositional(msg string) func(*cmdCtx) *parseError {
	return func(c *cmdCtx) *parseError {
		if len(c.res.extra) > 0 {
			return errorf("%s", msg)
		}
		return nil
	}
}

// dupCheck mirrors the "already been defined" warnings of list commands
// (pykickstart: commands/user.py FC6_User, group.py F12_Group,
// repo.py FC6_Repo).
func dupCheck(kind, dest, msg string) func(*cmdCtx) *parseError {
	return func(c *cmdCtx) *parseError {
		if c.spec.style == styleKnown && len(c.res.extra) > 0 {
			return c.unexpected(c.name)
		}
		key := c.str(dest)
		if !c.l.define(kind, key) {
			return errorf(msg, key)
		}
		return nil
	}
}

// pykickstart: commands/authconfig.py F28_Authconfig warns on every use.
func checkAuthconfig(c *cmdCtx) *parseError {
	if c.className() == "F28_Authconfig" {
		return &parseError{isDeprecation: true, kind: kindDeprecatedCommand, msg: "The authconfig command will be deprecated, use authselect instead."}
	}
	return nil
}

// pykickstart: commands/timezone.py FC6_Timezone, RHEL7_Timezone,
// F25_Timezone, F32_Timezone, F33_Timezone, F40_Timezone, RHEL10_Timezone.
func checkTimezone(c *cmdCtx) *parseError {
	cls := c.className()
	if cls == "FC6_Timezone" || cls == "FC3_Timezone" {
		tz := c.pos("timezone")
		if len(c.res.extra) > 0 {
			return c.unexpected("timezone")
		}
		if len(tz) != 1 {
			return errorf("A single argument is expected for the timezone command")
		}
		return nil
	}
	if len(c.args) == 0 {
		return errorf("At least one option and/or an argument are expected for the timezone command")
	}
	if len(c.pos("timezone")) > 1 {
		return errorf("One or zero arguments are expected for the timezone command")
	}
	ntp := len(commaList(c.str("ntpservers"))) > 0
	nontp := c.set("nontp")
	if cls != "RHEL10_Timezone" && ntp && nontp {
		return errorf("Options --nontp and --ntpservers are mutually exclusive")
	}
	if cls == "F32_Timezone" || cls == "F33_Timezone" {
		for _, a := range c.args {
			if a == "--isUtc" {
				return &parseError{isDeprecation: true, kind: kindDeprecatedOption, words: []string{"--isUtc"}, msg: "The option --isUtc will be deprecated in future releases. Please modify your kickstart file to replace this option with its preferred alias --utc."}
			}
		}
	}
	if cls == "F33_Timezone" {
		if ntp {
			return &parseError{isDeprecation: true, kind: kindDeprecatedOption, words: []string{"--ntpservers"}, msg: "The option --ntpservers will be deprecated in future releases. Please modify your kickstart file to replace this option with timesource --ntp-server <server hostname> command invocation, one per NTP server."}
		}
		if nontp {
			return &parseError{isDeprecation: true, kind: kindDeprecatedOption, words: []string{"--nontp"}, msg: "The option --nontp will be deprecated in future releases. Please modify your kickstart file to replace this option with timesource --ntp-disable command invocation."}
		}
	}
	return nil
}

// commaList is pykickstart's commaSplit.
func commaList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimFunc(s, pySpace); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pykickstart: commands/keyboard.py FC3_Keyboard, F18_Keyboard.
func checkKeyboard(c *cmdCtx) *parseError {
	kbd := c.pos("kbd")
	if c.className() == "FC3_Keyboard" {
		if len(kbd) != 1 {
			return errorf("Kickstart command keyboard requires one argument")
		}
		if len(c.res.extra) > 0 {
			return c.unexpected("keyboard")
		}
		return nil
	}
	switch {
	case len(kbd) > 1:
		return errorf("A single argument is expected for the keyboard command")
	case len(c.res.extra) > 0:
		return c.unexpected("keyboard")
	case len(kbd) == 0 && c.str("vc_keymap") == "" && len(commaList(strings.Join(c.all("x_layouts"), ","))) == 0:
		return errorf("One of --xlayouts, --vckeymap options with value(s) or argument is expected for the keyboard command")
	}
	return nil
}

// pykickstart: commands/rootpw.py FC3_RootPw, F18_RootPw.
func checkRootpw(c *cmdCtx) *parseError {
	pw := c.pos("password")
	hasPw := len(pw) > 0
	if strings.HasPrefix(c.className(), "F8_") || strings.HasPrefix(c.className(), "FC3_") {
		if !hasPw {
			return errorf("A single argument is expected for the rootpw command")
		}
	} else if !hasPw && !c.set("lock") {
		return errorf("A single argument is expected for the rootpw command")
	}
	if len(c.res.extra) > 0 {
		return c.unexpected("rootpw")
	}
	return nil
}

// pykickstart: commands/lang.py FC3_Lang.
func checkLang(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return c.unexpected("lang")
	}
	return nil
}

// pykickstart: commands/key.py RHEL5_Key.
func checkKey(c *cmdCtx) *parseError {
	if c.set("skip") {
		return nil
	}
	if len(c.res.extra) != 1 {
		return errorf("Kickstart command key requires one argument")
	}
	if strings.HasPrefix(c.res.extra[0], "-") {
		return c.unexpected("key")
	}
	return nil
}

// pykickstart: commands/device.py F8_Device.
func checkDevice(c *cmdCtx) *parseError {
	if len(c.res.extra) != 1 {
		return errorf("device command requires a single argument: module name")
	}
	if strings.HasPrefix(c.res.extra[0], "-") {
		return c.unexpected("device")
	}
	if !c.l.define("device", c.res.extra[0]) {
		return errorf("A module with the name %s has already been defined.", c.res.extra[0])
	}
	return nil
}

// pykickstart: commands/eula.py F20_Eula.
func checkEula(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return errorf("Kickstart command eula does not take any arguments")
	}
	if !c.set("agreed") {
		return errorf("Kickstart command eula expects the --agreed option")
	}
	return nil
}

// pykickstart: commands/network.py FC3_Network (device already defined),
// RHEL7_Network (interface name, bridge options), F22_Network (bridge
// options), F27_Network (--bindto), F39_Network (DNS options that need
// --device).
func checkNetwork(c *cmdCtx) *parseError {
	dev := c.str("device")
	if !c.l.define("network", dev) {
		return errorf("A network device with the name %s has already been defined.", dev)
	}
	if c.className() == "RHEL7_Network" {
		if msg := interfaceNameProblem(c.str("interfacename")); msg != "" {
			return errorf("%s", msg)
		}
	}
	if c.set("bridgeopts") && c.str("bridgeopts") != "" {
		if len(c.all("bridgeslaves")) == 0 || c.str("bridgeslaves") == "" {
			return errorf("Option --bridgeopts requires --bridgeslaves to be specified")
		}
		for _, opt := range strings.Split(c.str("bridgeopts"), ",") {
			_, value, _ := strings.Cut(opt, "=")
			if value == "" || strings.Contains(value, "=") {
				return errorf("Bad format of --bridgeopts, expecting key=value options separated by ','")
			}
		}
	}
	if c.str("bindto") == "mac" && c.str("vlanid") != "" && c.str("bondopts") == "" {
		return errorf("--bindto=mac is not supported for this type of device")
	}
	if dev == "" {
		for _, o := range []struct{ dest, opt string }{
			{"ipv4_dns_search", "--ipv4-dns-search"}, {"ipv6_dns_search", "--ipv6-dns-search"},
			{"ipv4_ignore_auto_dns", "--ipv4-ignore-auto-dns"}, {"ipv6_ignore_auto_dns", "--ipv6-ignore-auto-dns"},
		} {
			if c.str(o.dest) != "" || (c.set(o.dest) && o.dest[len(o.dest)-3:] == "dns") {
				return errorf("Option %s requires --device to be specified", o.opt)
			}
		}
	}
	return nil
}

// noBtrfs are the RHEL classes that refuse btrfs (RHEL8_Partition and
// the classes that inherit its parse()); RHEL10_Raid derives from
// F43_Raid instead and accepts it.
var noBtrfs = map[string]bool{
	"RHEL8_Partition": true, "RHEL9_Partition": true, "RHEL10_Partition": true,
	"RHEL8_LogVol": true, "RHEL9_LogVol": true, "RHEL10_LogVol": true,
	"RHEL8_Raid": true, "RHEL9_Raid": true,
}

// storageCommon holds the checks shared by part, raid and logvol:
// pykickstart F23_* (mkfsoptions), F29_* (pbkdf), RHEL8_* (btrfs).
func storageCommon(c *cmdCtx, btrfsMountpoint bool) *parseError {
	if c.set("mkfsopts") && c.str("mkfsopts") != "" {
		if c.set("format") && !formatOn(c) {
			return errorf("--mkfsoptions with --noformat has no effect.")
		}
		if c.str("fsprofile") != "" {
			return errorf("--mkfsoptions and --fsprofile cannot be used together.")
		}
	}
	if c.str("pbkdf_time") != "" && c.str("pbkdf_iterations") != "" && c.str("pbkdf_time") != "0" && c.str("pbkdf_iterations") != "0" {
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if noBtrfs[c.className()] {
		mp := ""
		if m := c.pos("mntpoint"); len(m) > 0 {
			mp = m[0]
		}
		if c.str("fstype") == "btrfs" || (btrfsMountpoint && strings.HasPrefix(mp, "btrfs.")) {
			return errorf("Btrfs file system is not supported")
		}
	}
	return nil
}

// formatOn reports the effective --format/--noformat value (the last wins).
func formatOn(c *cmdCtx) bool {
	on := true
	for _, g := range c.res.given {
		name, _, _ := strings.Cut(g, "=")
		for _, a := range c.spec.names {
			if a.s == name || (strings.HasPrefix(a.s, name) && len(name) > 2) {
				if c.spec.acts[a.act].dest == "format" {
					on = !strings.HasPrefix(a.s, "--no") && a.s != "--useexisting"
				}
				break
			}
		}
	}
	return on
}

// pykickstart: commands/partition.py FC3_Partition, F17_Partition,
// F20_Partition, F23_Partition, F29_Partition, RHEL8/9/10_Partition.
func checkPartition(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return c.unexpected("partition")
	}
	mp := c.pos("mntpoint")[0]
	if mp != "swap" && !c.l.define("partition", mp) {
		return errorf("A partition with the mountpoint %s has already been defined.", mp)
	}
	if c.set("resize") && c.str("onPart") == "" {
		return errorf("--resize can only be used in conjunction with --onpart")
	}
	if c.set("resize") && !c.intSet("size") {
		return errorf("--resize requires --size to specify new size")
	}
	if c.l.v != RHEL6 && c.str("fstype") == "tmpfs" && (c.set("grow") || c.intSet("maxSizeMB")) {
		// F20_Partition: tmpfs has no size to grow into
		return errorf("The --fstype=tmpfs option can't be used together with --grow or --maxsize")
	}
	return storageCommon(c, true)
}

// pykickstart: commands/logvol.py FC3_LogVol, F17_LogVol, F20_LogVol,
// F21_LogVol, F23_LogVol, F29_LogVol, RHEL8_LogVol, in that order.
func checkLogvol(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return c.unexpected("logvol")
	}
	preexist := c.set("preexist") || !formatOn(c)
	name, vg := c.str("name"), c.str("vgname")
	if !c.l.define("logvol", vg+"\x00"+name) {
		return errorf("A logical volume with the name %s has already been defined in volume group %s.", name, vg)
	}
	if c.set("resize") {
		// F17_LogVol
		if !preexist {
			return errorf("--resize can only be used in conjunction with --useexisting")
		}
		if !c.intSet("size") {
			return errorf("--resize requires --size to indicate new size")
		}
	}
	thin, pool := c.set("thin_volume"), c.set("thin_pool")
	if thin && pool {
		return errorf("--thin and --thinpool cannot both be specified for the same logvol")
	}
	if thin && c.str("pool_name") == "" {
		return errorf("--thin requires --poolname to specify pool name")
	}
	if (nonzero(c.str("chunk_size")) || nonzero(c.str("metadata_size"))) && !pool {
		return errorf("--chunksize and --metadatasize are for thin pools only")
	}
	if c.l.v >= RHEL7 {
		if !preexist && !nonzero(c.str("percent")) && !nonzero(c.str("size")) && !c.set("recommended") && !c.set("hibernation") {
			return errorf("No size given for logical volume. Use one of --useexisting, --noformat, --size, --percent, or --hibernation.")
		}
		if p := c.str("percent"); p != "" {
			if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && (n < 0 || n > 100) {
				return errorf("Percentage must be between 0 and 100.")
			}
		}
		if nonzero(c.str("size")) && nonzero(c.str("percent")) {
			return errorf("--size and --percent cannot both be specified for the same logvol")
		}
	}
	if c.l.v >= RHEL8 {
		if err := logvolCache(c, preexist, thin); err != nil {
			return err
		}
	}
	return storageCommon(c, false)
}

// logvolCache mirrors F23_LogVol's rules for an LVM cache (RHEL 8 on).
func logvolCache(c *cmdCtx, preexist, thin bool) *parseError {
	pvs := len(commaList(c.str("cache_pvs"))) > 0
	mode := c.str("cache_mode")
	if !c.intSet("cache_size") && mode == "" && !pvs {
		return nil
	}
	switch {
	case preexist:
		return errorf("Adding a cache to an existing logical volume is not supported")
	case thin:
		return errorf("Thin volumes cannot be cached")
	case !pvs:
		return errorf("Cache needs to have a list of (fast) PVs specified")
	case !c.intSet("cache_size"):
		return errorf("Cache needs to have size specified")
	case mode != "" && mode != "writeback" && mode != "writethrough":
		return errorf("Invalid cache mode given: %s", mode)
	}
	return nil
}

func nonzero(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && v != "0"
}

// pykickstart: commands/raid.py FC3_Raid (+ F23, F29, RHEL8 subclasses).
func checkRaid(c *cmdCtx) *parseError {
	for _, e := range c.res.extra {
		if strings.HasPrefix(e, "-") {
			return c.unexpected("raid")
		}
	}
	members := c.pos("partitions")
	if len(members) == 0 {
		members = c.res.extra
	}
	preexist := c.set("preexist") || !formatOn(c)
	if len(members) == 0 && !preexist {
		return errorf("Partitions required for raid")
	}
	if len(members) > 0 && preexist {
		return errorf("Members may not be specified for preexisting RAID device")
	}
	dev := c.str("device")
	if strings.HasPrefix(dev, "md") && c.l.v != RHEL10 {
		dev = dev[2:]
	}
	if !c.l.define("raid", dev) {
		return errorf("A RAID device with the name %s has already been defined.", dev)
	}
	if !preexist && c.str("level") == "" {
		return errorf("RAID Partition defined without RAID level")
	}
	if preexist && dev == "" {
		return errorf("Device required for preexisting RAID device")
	}
	return storageCommon(c, false)
}

// pykickstart: commands/volgroup.py FC3_VolGroup, F16_VolGroup.
func checkVolgroup(c *cmdCtx) *parseError {
	name := c.pos("name")
	parts := c.pos("partitions")
	if len(parts) == 0 {
		if len(c.res.extra) > 0 {
			parts = c.res.extra
		} else if len(name) > 1 {
			parts = name[1:]
		}
	}
	preexist := c.set("preexist") || !formatOn(c)
	if len(name) == 0 {
		return errorf("volgroup must be given a VG name")
	}
	if len(parts) == 0 && !preexist {
		return errorf("volgroup must be given a list of partitions")
	}
	if len(parts) > 0 && preexist {
		return errorf("Members may not be specified for preexisting volgroup")
	}
	if !c.l.define("volgroup", name[0]) {
		return errorf("A volgroup with the name %s has already been defined.", name[0])
	}
	if v := c.str("reserved_space"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n < 0 {
			return errorf("Volume group reserved space must be a positive integer.")
		}
	}
	if v := c.str("reserved_percent"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && !(n > 0 && n < 100) {
			return errorf("Volume group reserved space percentage must be between 1 and 99.")
		}
	}
	return nil
}

// pykickstart: commands/autopart.py F21_AutoPart, F29_AutoPart,
// RHEL8_AutoPart, F38_AutoPart, RHEL10_AutoPart, in that order.
func checkAutopart(c *cmdCtx) *parseError {
	typ := strings.ToLower(c.str("type"))
	if c.l.v >= RHEL7 {
		if c.str("fstype") == "btrfs" {
			return errorf("autopart --fstype=btrfs is not valid fstype, use --type=btrfs instead")
		}
		if typ == "btrfs" && c.str("fstype") != "" {
			return errorf("autopart --fstype cannot be used with --type=btrfs")
		}
	}
	if c.intSet("pbkdf_time") && c.intSet("pbkdf_iterations") {
		// F29_AutoPart
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if c.set("hibernation") && c.set("noswap") {
		// F38_AutoPart
		return errorf("Only one of --noswap and --hibernation can be specified.")
	}
	if c.l.v.atLeastRHEL(RHEL8) && typ == "btrfs" {
		// RHEL8_AutoPart, RHEL10_AutoPart
		return errorf("autopart --type=btrfs is not supported")
	}
	return nil
}

// pykickstart: commands/btrfs.py F17_BTRFS, F23_BTRFS.
func checkBtrfs(c *cmdCtx) *parseError {
	if len(c.res.extra) == 0 {
		return errorf("btrfs must be given a mountpoint")
	}
	for _, e := range c.res.extra {
		if strings.HasPrefix(e, "-") {
			return c.unexpected("btrfs")
		}
	}
	devices := c.res.extra[1:]
	if len(devices) == 0 && !c.set("subvol") {
		return errorf("btrfs must be given a list of partitions")
	}
	if len(devices) == 0 {
		return errorf("btrfs subvol requires specification of parent volume")
	}
	if c.set("subvol") && c.str("name") == "" {
		return errorf("btrfs subvolume requires a name")
	}
	if !c.l.define("btrfs", pyNormpath(c.res.extra[0])) {
		return errorf("A btrfs volume with the mountpoint %s has already been defined.", pyNormpath(c.res.extra[0]))
	}
	// F23_BTRFS: formatting options on a volume that is not formatted
	if (c.set("preexist") || !formatOn(c)) && c.str("mkfsopts") != "" {
		return errorf("--mkfsoptions with --noformat or --useexisting has no effect.")
	}
	return nil
}

// exclusiveRequired mirrors pykickstart's exclusive_required_options
// checks (url.py F18_Url, timesource.py F33_Timesource).
func exclusiveRequired(c *cmdCtx, command string, opts [][2]string) *parseError {
	var avail, used []string
	for _, o := range opts {
		present := false
		for _, a := range c.spec.acts {
			if a.dest == o[0] {
				present = true
			}
		}
		if !present {
			continue
		}
		avail = append(avail, o[1])
		if c.str(o[0]) != "" || (c.set(o[0]) && c.spec.acts[c.actIndex(o[0])].nargs == nargsZero) {
			used = append(used, o[1])
		}
	}
	if len(used) == 0 {
		return errorf("One of -%s options must be specified for %s command.", strings.Join(avail, ", "), command)
	}
	if len(used) > 1 {
		return errorf("Only one of %s options may be specified for %s command.", strings.Join(used, ", "), command)
	}
	return nil
}

func (c *cmdCtx) actIndex(dest string) int {
	for i, a := range c.spec.acts {
		if a.dest == dest {
			return i
		}
	}
	return -1
}

// pykickstart: commands/repo.py FC6_Repo: at most one of the URL
// options, and (RHEL6_Repo, whose urlRequired is still set) at least one;
// then the "already defined" warning.
func checkRepo(c *cmdCtx) *parseError {
	opts := [][2]string{{"mirrorlist", "--mirrorlist"}, {"baseurl", "--baseurl"}, {"metalink", "--metalink"}}
	err := exclusiveRequired(c, "repo", opts)
	if err != nil && (c.l.v == RHEL6 || strings.HasPrefix(err.msg, "Only one")) {
		return err
	}
	if !c.l.define("repo", c.str("name")) {
		return errorf("A repo with the name %s has already been defined.", c.str("name"))
	}
	return nil
}

func checkURL(c *cmdCtx) *parseError {
	if c.className() == "RHEL6_Url" || c.className() == "FC3_Url" {
		return nil
	}
	return exclusiveRequired(c, "url", [][2]string{{"mirrorlist", "--mirrorlist"}, {"url", "--url"}, {"metalink", "--metalink"}})
}

func checkTimesource(c *cmdCtx) *parseError {
	return exclusiveRequired(c, "timesource", [][2]string{{"ntp_server", "--ntp-server"}, {"ntp_pool", "--ntp-pool"}, {"ntp_disable", "--ntp-disable"}})
}

// pykickstart: commands/services.py FC6_Services.
func checkServices(c *cmdCtx) *parseError {
	if len(commaList(strings.Join(c.all("disabled"), ","))) == 0 && len(commaList(strings.Join(c.all("enabled"), ","))) == 0 {
		return errorf("One of --disabled or --enabled must be provided.")
	}
	return nil
}

// pykickstart: commands/ignoredisk.py RHEL6_IgnoreDisk, F8_IgnoreDisk
// (the message names --interactive while the option exists).
func checkIgnoredisk(c *cmdCtx) *parseError {
	n := 0
	if len(commaList(c.str("ignoredisk"))) > 0 {
		n++
	}
	if len(commaList(c.str("onlyuse"))) > 0 {
		n++
	}
	if c.set("interactive") {
		n++
	}
	if n != 1 {
		if i := c.actIndex("interactive"); i >= 0 && !c.spec.acts[i].deprecated {
			return errorf("One of --drives , --only-use , or --interactive must be specified for ignoredisk command.")
		}
		return errorf("One of --drives or --only-use must be specified for ignoredisk command.")
	}
	return nil
}

// pykickstart: commands/logging.py FC6_Logging.
func checkLogging(c *cmdCtx) *parseError {
	if c.str("port") != "" && c.str("host") == "" {
		return errorf("Can't specify --port without --host.")
	}
	return nil
}

// pykickstart: commands/harddrive.py FC3_HardDrive.
func checkHarddrive(c *cmdCtx) *parseError {
	bios, part := c.set("biospart"), c.set("partition")
	if bios == part {
		return errorf("One of biospart or partition options must be specified.")
	}
	return nil
}

// pykickstart: commands/bootloader.py F17_Bootloader, F39_Bootloader.
func checkBootloader(c *cmdCtx) *parseError {
	if strings.Contains(c.str("bootDrive"), ",") {
		return errorf("--boot-drive accepts only one argument")
	}
	if c.set("sdboot") && c.set("extlinux") {
		return errorf("Only one of --sdboot and --extlinux may be specified for bootloader command.")
	}
	return nil
}

// pykickstart: commands/sshkey.py F22_SshKey.
func checkSshkey(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return c.unexpected("sshkey")
	}
	if !c.l.define("sshkey", c.str("username")) {
		return errorf("An ssh user with the name %s has already been defined.", c.str("username"))
	}
	return nil
}

// pykickstart: commands/sshpw.py F13_SshPw.
func checkSshpw(c *cmdCtx) *parseError {
	if len(c.pos("password")) == 0 {
		return errorf("A single argument is expected for the sshpw command")
	}
	if len(c.res.extra) > 0 {
		return c.unexpected("sshpw")
	}
	if !c.l.define("sshpw", c.str("username")) {
		return errorf("An ssh user with the name %s has already been defined.", c.str("username"))
	}
	return nil
}

// pykickstart: commands/driverdisk.py FC4_DriverDisk.
func checkDriverdisk(c *cmdCtx) *parseError {
	part := c.pos("partition")
	if len(part) > 1 {
		return errorf("Only one partition may be specified for driverdisk command.")
	}
	if len(c.res.extra) > 0 {
		return c.unexpected("driverdisk")
	}
	src, bios := c.str("source") != "", c.str("biospart") != ""
	switch {
	case len(part) > 0 && src:
		return errorf("Only one of --source and partition may be specified for driverdisk command.")
	case len(part) > 0 && bios:
		return errorf("Only one of --biospart and partition may be specified for driverdisk command.")
	case src && bios:
		return errorf("Only one of --biospart and --source may be specified for driverdisk command.")
	case len(part) == 0 && !src && !bios:
		return errorf("One of --source, --biospart, or partition must be specified for driverdisk command.")
	}
	return nil
}

// pykickstart: commands/mount.py F27_Mount.
func checkMount(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return c.unexpected("mount")
	}
	mp := c.pos("mntpoint")
	if len(mp) > 0 && strings.ToLower(mp[0]) != "none" && !strings.HasPrefix(mp[0], "/") {
		return errorf("Invalid mount point '%s' given", mp[0])
	}
	if !c.set("reformat") && c.str("mkfs_opts") != "" {
		return errorf("'--mkfsoptions' requires --reformat")
	}
	return nil
}

// pykickstart: commands/module.py F29_Module.
func checkModule(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return errorf("The enable module command does not take position arguments!")
	}
	return nil
}

// pykickstart: commands/rescue.py F10_Rescue.
func checkRescue(c *cmdCtx) *parseError {
	if c.set("nomount") && c.set("romount") {
		return errorf("Only one of --nomount and --romount may be specified for rescue command.")
	}
	return nil
}

// pykickstart: commands/updates.py F7_Updates.
func checkUpdates(c *cmdCtx) *parseError {
	if c.spec.style != styleKnown {
		return nil
	}
	u := c.pos("updates")
	switch {
	case len(u) > 1:
		return errorf("Kickstart command updates only takes one argument")
	case len(c.res.extra) > 0:
		return c.unexpected("updates")
	}
	return nil
}

// pykickstart: commands/displaymode.py F26_DisplayMode.
func checkDisplayMode(c *cmdCtx) *parseError {
	if c.set("nonInteractive") {
		return errorf("Kickstart command cmdline does not support --non-interactive parameter")
	}
	return nil
}

// pykickstart: commands/upgrade.py F11_Upgrade (RHEL6/7 install).
func checkInstall(c *cmdCtx) *parseError {
	if c.set("root_device") && c.str("root_device") == "" {
		return errorf("Kickstart command upgrade does not accept empty parameter --root-device")
	}
	return nil
}

// sectionHeaderCheck mirrors what the section classes verify after
// argparse (pykickstart: sections.py PackageSection, TracebackScriptSection,
// CertificateSection).
func (l *linter) sectionHeaderCheck(n *Node, spec *cmdSpec, res *parseResult) *parseError {
	has := func(dest string) bool { return res.has(spec, dest) }
	args := n.Args[1:]
	contains := func(opt string) bool {
		for _, a := range args {
			if a == opt || strings.HasPrefix(a, opt+"=") {
				return true
			}
		}
		return false
	}
	switch n.Args[0] {
	case "%packages":
		if has("defaultPackages") && has("nobase") {
			return errorf("--default and --nobase cannot be used together")
		}
		if has("defaultPackages") && has("nocore") {
			return errorf("--default and --nocore cannot be used together")
		}
		// F32..F39 and RHEL9 warn about the camel-case aliases.
		if l.v == RHEL9 {
			for _, o := range [][2]string{{"--instLangs", "--inst-langs"}, {"--excludeWeakdeps", "--exclude-weakdeps"}} {
				if contains(o[0]) {
					return &parseError{isDeprecation: true, kind: kindDeprecatedOption, words: []string{o[0]}, msg: fmt.Sprintf("The %s option on line %d will be deprecated in future releases. Please modify your kickstart file to replace this option with its preferred alias %s.", o[0], n.Pos.ksLine(), o[1])}
				}
			}
		}
	case "%traceback":
		if l.v >= RHEL9 {
			return &parseError{isDeprecation: true, kind: kindDeprecatedCommand, msg: "The %traceback section has been deprecated. It may be removed in the future, which will result in a fatal error from kickstart. Please modify your kickstart file to use the %onerror section instead."}
		}
	case "%certificate":
		known := false
		for _, a := range spec.acts {
			if a.dest == "dir" || a.dest == "type" {
				known = true
			}
		}
		if known && !has("dir") && !has("type") {
			return errorf("One of --dir or --type must be specified for %%certificate")
		}
	}
	return nil
}

// interfaceNameProblem mirrors validate_network_interface_name in
// pykickstart's commands/network.py (RHEL7_Network only): a VLAN written
// as <prefix>.<id> or vlan<id> needs a numeric id in 0..4095, and the
// prefix of the dotted form cannot be "vlan".
func interfaceNameProblem(name string) string {
	id, hasID := 0, false
	if prefix, rest, dot := strings.Cut(name, "."); dot {
		if prefix == "vlan" {
			return "When using the <prefix>.<vlan id> interface name notation, <prefix> can't be equal to 'vlan'."
		}
		n, ok := pyIntValue(rest)
		if !ok {
			return "If network --interfacename contains a '.', valid vlan id should follow."
		}
		id, hasID = n, true
	}
	if rest, ok := strings.CutPrefix(name, "vlan"); ok {
		n, ok := pyIntValue(rest)
		if !ok {
			return "If network --interfacename starts with 'vlan', valid vlan id should follow."
		}
		id, hasID = n, true
	}
	if hasID && (id < 0 || id > 4095) {
		return "The vlan id is out of the 0-4095 vlan id range."
	}
	return ""
}

// intSet is Python's truth of an int option: given and not zero.
func (c *cmdCtx) intSet(dest string) bool {
	n, ok := pyIntValue(c.str(dest))
	return ok && n != 0
}

// pyIntValue is Python's int() of a string; values too large for an int
// count as a large non-zero number.
func pyIntValue(s string) (int, bool) {
	if !pyInt(s) {
		return 0, false
	}
	t := strings.ReplaceAll(strings.TrimFunc(s, pySpace), "_", "")
	n, err := strconv.Atoi(t)
	if err != nil {
		if strings.HasPrefix(t, "-") {
			return math.MinInt, true
		}
		return math.MaxInt, true
	}
	return n, true
}

// pyNormpath is pykickstart's mountpoint() type: os.path.normpath for an
// absolute path (which, unlike path.Clean, keeps exactly two leading
// slashes).
func pyNormpath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	c := path.Clean(p)
	if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
		return "/" + c
	}
	return c
}

// pykickstart: commands/dmraid.py FC6_DmRaid: the same name (its last
// path component) and devices twice.
func checkDmraid(c *cmdCtx) *parseError {
	name := c.str("name")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	devs := pyList(c.all("devices"))
	if !c.l.define("dmraid", name+"\x00"+devs) {
		return errorf("A DM RAID device with the name %s and devices %s has already been defined.", name, devs)
	}
	return nil
}

// pykickstart: commands/fcoe.py F12_Fcoe.
func checkFcoe(c *cmdCtx) *parseError {
	if !c.l.define("fcoe", c.str("nic")) {
		return errorf("A FCOE device with the name %s has already been defined.", c.str("nic"))
	}
	return nil
}

// pykickstart: commands/multipath.py FC6_MultiPath: a path device belongs
// to one multipath device.
func checkMultipath(c *cmdCtx) *parseError {
	dev, name := c.str("device"), c.str("name")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if owner, ok := c.l.multipath[dev]; ok {
		return errorf("Device '%s' is already used in multipath '%s'", dev, owner)
	}
	c.l.multipath[dev] = name
	return nil
}

// pykickstart: commands/nvdimm.py F28_Nvdimm.
func checkNvdimm(c *cmdCtx) *parseError {
	if len(c.res.extra) > 0 {
		return errorf("Unexpected arguments to nvdimm command: %s", pyList(c.res.extra))
	}
	action := ""
	if a := c.pos("action"); len(a) > 0 {
		action = a[0]
	}
	ns := c.str("namespace")
	devs := commaList(c.str("blockdevs"))
	if ns != "" && len(devs) > 0 {
		return errorf("Only one of --namespace and --blockdevs device specifications can be used")
	}
	if !c.l.define("nvdimm", action+"\x00"+ns+"\x00"+strings.Join(devs, ",")) {
		if ns != "" {
			return errorf("An action %s on namespace %s has already been defined.", action, ns)
		}
		if len(devs) > 0 {
			return errorf("An action %s on devices %s has already been defined.", action, pyList(devs))
		}
	}
	mode := c.str("mode")
	if mode == "" {
		mode = "sector" // the option's default
	}
	switch action {
	case "reconfigure":
		if ns == "" {
			return errorf("Action %s requires --namespace argument to be set", action)
		}
		if mode == "sector" && !c.intSet("sectorsize") {
			return errorf("Action %s with mode %s requires --sectorsize argument to be set", action, mode)
		}
	case "use":
		if ns == "" && len(devs) == 0 {
			return errorf("Action %s requires --namespace or --blockdevs argument to be set", action)
		}
	}
	return nil
}

// pykickstart: commands/ostreesetup.py F21_OSTreeSetup.
func checkOSTreeSetup(c *cmdCtx) *parseError {
	u := c.str("url")
	if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "http:") && !strings.HasPrefix(u, "https:") {
		return errorf("ostree repos must use file, HTTP or HTTPS protocol.")
	}
	return nil
}

// pykickstart: commands/rhsm.py RHEL8_RHSM.
func checkRHSM(c *cmdCtx) *parseError {
	for _, k := range c.all("activation_keys") {
		if k == "" {
			return errorf("Empty string is not a valid activation key.")
		}
	}
	return nil
}

// pykickstart: commands/snapshot.py F26_Snapshot.
func checkSnapshot(c *cmdCtx) *parseError {
	name := c.str("name")
	if !c.l.define("snapshot", name) {
		return errorf("Snapshot with the name %s has been already defined!", name)
	}
	origin := ""
	if o := c.pos("origin"); len(o) > 0 {
		origin = o[0]
	}
	vg, lv, ok := strings.Cut(origin, "/")
	if !ok || vg == "" || lv == "" || strings.Contains(lv, "/") {
		return errorf("Snapshot origin %s must be specified by VG/LV!", origin)
	}
	return nil
}

// pykickstart: commands/zfcp.py FC3_ZFCP (the same LUN twice) and
// F37_ZFCP (a device number alone, for NPIV, or with both WWPN and LUN).
func checkZFCP(c *cmdCtx) *parseError {
	devnum, wwpn, lun := c.str("devnum"), c.str("wwpn"), c.str("fcplun")
	key := strings.Join([]string{devnum, wwpn, lun, c.str("scsiid"), c.str("scsilun")}, "\x00")
	if !c.l.define("zfcp", key) {
		return errorf("A zfcp with this information has already been defined.")
	}
	if c.l.v >= RHEL9 && !((devnum != "" && wwpn == "" && lun == "") || (devnum != "" && wwpn != "" && lun != "")) {
		return errorf("Only --devnum or --devnum with --wwpn and --fcplun are allowed.")
	}
	return nil
}

// pykickstart: commands/realm.py F19_Realm. The command re-reads its raw
// line (pykickstart: currentLine[len("realm"):]), splits it again without
// comment handling, and parses "join" options with Python's getopt.
func checkRealm(c *cmdCtx) *parseError {
	if c.l.realmJoined {
		return errorf("The realm command 'join' should only be specified once")
	}
	rest := ""
	if len(c.n.Raw) > len(c.name) {
		rest = strings.TrimFunc(c.n.Raw[len(c.name):], pySpace)
	}
	toks, _, err := shlexSplit(rest, false)
	if err != nil {
		return errorf("General error in input file:  %v", err)
	}
	args := tokenValues(toks)
	if len(args) == 0 {
		return errorf("Missing realm command arguments")
	}
	if args[0] != "join" {
		return errorf("Unsupported realm '%s' command", args[0])
	}
	remaining, err2 := pyGetoptLong(args[1:], []string{"client-software=", "server-software=", "membership-software=", "one-time-password=", "no-password", "computer-ou="})
	if err2 != "" {
		return errorf("Invalid realm arguments: %s", err2)
	}
	if len(remaining) != 1 {
		return errorf("Specify only one realm to join")
	}
	c.l.realmJoined = true
	return nil
}

// pyGetoptLong is Python's getopt.getopt(args, "", longopts): options
// stop at the first word that is not one, a long option may be an
// unambiguous prefix, and "name=" options take a value. It returns the
// words left over or getopt's error message.
func pyGetoptLong(args, longopts []string) ([]string, string) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		if args[0] == "--" {
			return args[1:], ""
		}
		if !strings.HasPrefix(args[0], "--") {
			return nil, fmt.Sprintf("option -%c not recognized", []rune(args[0][1:])[0])
		}
		opt, _, hasVal := strings.Cut(args[0][2:], "=")
		args = args[1:]
		var matches []string
		exact := ""
		for _, o := range longopts {
			if strings.HasPrefix(o, opt) {
				matches = append(matches, o)
			}
			if o == opt || o == opt+"=" {
				exact = o
			}
		}
		match := exact
		switch {
		case len(matches) == 0:
			return nil, fmt.Sprintf("option --%s not recognized", opt)
		case match == "" && len(matches) > 1:
			return nil, fmt.Sprintf("option --%s not a unique prefix", opt)
		case match == "":
			match = matches[0]
		}
		name, takesArg := strings.CutSuffix(match, "=")
		switch {
		case takesArg && !hasVal:
			if len(args) == 0 {
				return nil, fmt.Sprintf("option --%s requires argument", name)
			}
			args = args[1:]
		case !takesArg && hasVal:
			return nil, fmt.Sprintf("option --%s must not have an argument", name)
		}
	}
	return args, ""
}
