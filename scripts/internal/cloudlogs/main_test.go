package cloudlogs

import (
	"os"
	"testing"

	"github.com/mediascale/mediascale/scripts/testkit/motoserver"
)

// TestMain runs the package's tests on one moto server, reset between
// tests, and stops it after them.
func TestMain(m *testing.M) { os.Exit(motoserver.Main(m)) }
