// Command mautrix-config-check runs a mautrix-signal config.yaml through the start-up of the
// bridgev2 framework (maunium.net/go/mautrix/bridgev2/matrix/mxmain) at the version the pinned
// mautrix-signal release is built with, and exits the way the bridge would.
//
// It is the framework's own code that judges the file: BridgeMain.PreInit loads it through the
// config upgrader (which detects legacy configs and, as in mautrix-signal, exits 1 on them),
// and BridgeMain.Init compiles the logging section, runs the "Configuration error" checks on
// example placeholders, opens the database handle and builds the Matrix connector. The checker
// stops there, before anything connects anywhere. Exit status 0 means the bridge would get past
// its configuration; any other status is the framework's own, with its own message.
//
// Only the network connector is a stand-in: the real Signal connector links libsignal, which
// cannot be built here. The stand-in knows the facts the framework asks a connector for (name,
// network id, default port) and checks `network.displayname_template` the way the Signal
// connector does when it decodes its section (it must parse as a Go text/template).
//
// Usage: mautrix-config-check -c config.yaml [-r registration.yaml]
// The file is never written: -n (no-update) is always added.
package main

import (
	"context"
	"fmt"
	"text/template"

	"go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
	flag "maunium.net/go/mauflag"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

func main() {
	// mauflag took its input from os.Args when it was initialised: add -n there.
	flag.DefaultSet().InputArgs = append(flag.DefaultSet().InputArgs, "-n")
	bridge := mxmain.BridgeMain{
		Name:        "mautrix-signal",
		URL:         "https://github.com/mautrix/signal",
		Description: "A Matrix-Signal puppeting bridge (configuration check).",
		Version:     "26.08",
		SemCalVer:   true,
		Connector:   &signalStandIn{},
	}
	bridge.InitVersion("", "", "")
	bridge.PreInit()
	bridge.Init()
	fmt.Printf("config accepted: %s passed the start-up checks of mautrix-go %s\n",
		bridge.ConfigPath, mautrix.Version)
}

// signalConfig is the part of the Signal connector's `network` section whose decoding can fail.
type signalConfig struct {
	DisplaynameTemplate string `yaml:"displayname_template"`
}

type plainSignalConfig signalConfig

func (c *signalConfig) UnmarshalYAML(node *yaml.Node) error {
	if err := node.Decode((*plainSignalConfig)(c)); err != nil {
		return err
	}
	_, err := template.New("displayname").Parse(c.DisplaynameTemplate)
	return err
}

// networkExample is the stand-in's example `network` section: the one key it checks, with the
// Signal connector's default value.
const networkExample = `displayname_template: '{{or .ProfileName .PhoneNumber "Unknown user"}}'`

// signalStandIn answers what the framework asks the Signal connector for during start-up.
type signalStandIn struct {
	config signalConfig
}

func (s *signalStandIn) Init(*bridgev2.Bridge) {}

func (s *signalStandIn) Start(context.Context) error { return nil }

func (s *signalStandIn) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:      "Signal",
		NetworkURL:       "https://signal.org",
		NetworkIcon:      "mxc://maunium.net/wPJgTQbZOtpBFmDNkiNEMDUp",
		NetworkID:        "signal",
		BeeperBridgeType: "signal",
		DefaultPort:      29328,
	}
}

func (s *signalStandIn) GetDBMetaTypes() database.MetaTypes { return database.MetaTypes{} }

func (s *signalStandIn) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{}
}

func (s *signalStandIn) GetConfig() (string, any, configupgrade.Upgrader) {
	return networkExample, &s.config, configupgrade.SimpleUpgrader(func(helper configupgrade.Helper) {
		helper.Copy(configupgrade.Str, "displayname_template")
	})
}

func (s *signalStandIn) LoadUserLogin(context.Context, *bridgev2.UserLogin) error { return nil }

func (s *signalStandIn) GetLoginFlows() []bridgev2.LoginFlow { return nil }

func (s *signalStandIn) CreateLogin(context.Context, *bridgev2.User, string) (bridgev2.LoginProcess, error) {
	return nil, fmt.Errorf("the configuration checker cannot log in")
}

func (s *signalStandIn) GetBridgeInfoVersion() (int, int) { return 1, 1 }
