// Package devices opens the device a --device value names, as a device.Device: the one place
// that knows every implementation (the CPU today, package cpudev). The executor (runtime/exec)
// and the trainer (runtime/train) get their device from here or from their caller and never
// name an implementation.
package devices
