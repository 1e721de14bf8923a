package actors

// testShim is the reference shim built by TestMain, for the package's
// internal tests.
var testShim string

// SetTestShim tells the internal tests where TestMain built the shim.
func SetTestShim(path string) { testShim = path }
