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
// With --upgrade-database it goes one step further, to where the bridge's start touches its
// database: it opens the database of the config's `database` section through mautrix-go's own
// dbutil (for `type: postgres`, the lib/pq driver, which takes the password from PGPASSWORD when
// the URI has none) and runs the bridgev2 schema upgrade and the Matrix state store's, as
// Bridge.StartConnectors and the Matrix connector's Start do, failing with the bridge's own exit
// status and message. It prints how lib/pq read the URI (never the password) and who it is
// connected as.
//
// Usage: mautrix-config-check -c config.yaml [-r registration.yaml] [--upgrade-database]
// The file is never written: -n (no-update) is always added.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"text/template"

	"github.com/lib/pq"
	"go.mau.fi/util/configupgrade"
	"go.mau.fi/util/dbutil"
	"gopkg.in/yaml.v3"
	flag "maunium.net/go/mauflag"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

// Registered on mauflag's default set before BridgeMain.PreInit parses it.
var upgradeDatabase = flag.Make().LongKey("upgrade-database").
	Usage("Open the configured database and run the bridge's schema upgrades.").
	Default("false").Bool()

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
	if *upgradeDatabase {
		upgrade(&bridge)
	}
}

// upgrade runs the database steps of the bridge's start on the handle Init opened, and exits
// as the bridge does when one fails.
func upgrade(bridge *mxmain.BridgeMain) {
	ctx := bridge.Log.WithContext(context.Background())
	section := bridge.Config.Database
	if dialect, _ := dbutil.ParseDialect(section.Type); dialect == dbutil.Postgres {
		// lib/pq's own reading of the URI and the environment, as the bridge's connections get it.
		cfg, err := pq.NewConfig(section.URI)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lib/pq refuses the database URI:", err)
			os.Exit(14)
		}
		fmt.Printf("lib/pq connects to host=%q port=%d dbname=%q user=%q sslmode=%q, password %s\n",
			cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.SSLMode,
			passwordSource(section.URI, cfg.Password))
	}
	if err := bridge.Bridge.DB.Upgrade(ctx); err != nil {
		bridge.LogDBUpgradeErrorAndExit("main", err, "Failed to initialize database")
	}
	if err := bridge.Matrix.StateStore.Upgrade(ctx); err != nil {
		bridge.LogDBUpgradeErrorAndExit("matrix_state", err, "Failed to initialize database")
	}
	var user, database string
	query := "SELECT current_user, current_database()"
	if bridge.DB.Dialect != dbutil.Postgres {
		query = "SELECT '', 'sqlite'"
	}
	if err := bridge.DB.QueryRow(ctx, query).Scan(&user, &database); err != nil {
		fmt.Fprintln(os.Stderr, "cannot ask the database who is connected:", err)
		os.Exit(14)
	}
	fmt.Printf("database upgraded: connected as %q to database %q\n", user, database)
}

// passwordSource says where lib/pq's password came from, never what it is: the URI, or else the
// environment (pq.NewConfig reads no password file).
func passwordSource(uri, password string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		if _, inURI := u.User.Password(); inURI {
			return "from the URI"
		}
	}
	if password == "" {
		return "not set"
	}
	return "from PGPASSWORD"
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
