package statetest

import "os"

var exit = os.Exit
