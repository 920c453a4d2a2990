package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrNoDevice is wrapped by Open's error when the driver loads but sees no GPU.
var ErrNoDevice = errors.New("no CUDA device")

// Result is a CUresult, the status that every CUDA driver API function returns; 0 is success.
type Result int32

// CUresult values that Open treats specially; the driver names the others itself.
const (
	resultSuccess     Result = 0   // CUDA_SUCCESS
	resultStubLibrary Result = 34  // CUDA_ERROR_STUB_LIBRARY: the toolkit's link stub, not a driver
	resultNoDevice    Result = 100 // CUDA_ERROR_NO_DEVICE
)

// Device attributes read by Open (CUdevice_attribute values).
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

// CallError reports a driver API call that returned a CUresult other than CUDA_SUCCESS.
type CallError struct {
	// Func is the driver function called ("cuInit").
	Func string
	// Code is the CUresult it returned.
	Code Result
	// Name and Desc are cuGetErrorName's and cuGetErrorString's text, empty when the driver
	// has neither.
	Name, Desc string
}

// Error formats the call, e.g. "cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is
// detected".
func (e *CallError) Error() string {
	s := fmt.Sprintf("%s: error %d", e.Func, e.Code)
	if e.Name != "" {
		s = fmt.Sprintf("%s: %s (%d)", e.Func, e.Name, e.Code)
	}
	if e.Desc != "" {
		s += ": " + e.Desc
	}
	return s
}

// Device is one GPU as the driver reports it.
type Device struct {
	// Ordinal is the device's index, as in --device cuda:N.
	Ordinal int
	// Name is cuDeviceGetName's text ("NVIDIA H100 80GB HBM3").
	Name string
	// TotalMem is the device memory in bytes (cuDeviceTotalMem_v2).
	TotalMem uint64
	// Major and Minor are the compute capability (9.0 for Hopper).
	Major, Minor int
}

// Driver is a loaded and initialised CUDA driver library with the GPUs it sees. The library stays
// loaded for the life of the process, as the CUDA runtime keeps it: unloading libcuda after cuInit
// is not supported by NVIDIA.
type Driver struct {
	// Path is the soname or file that was loaded ("libcuda.so.1").
	Path string
	// Version is cuDriverGetVersion's value, 1000*major + 10*minor (12040 for CUDA 12.4).
	Version int
	// Devices lists the GPUs, at least one.
	Devices []Device
}

// VersionString formats Version as "major.minor" ("12.4").
func (d *Driver) VersionString() string {
	return fmt.Sprintf("%d.%d", d.Version/1000, d.Version%1000/10)
}

// driverAPI holds the driver functions Open calls, bound to the loaded library. CUdevice is an
// int and size_t a pointer-sized unsigned integer in the C API.
type driverAPI struct {
	cuInit               func(flags uint32) Result
	cuDriverGetVersion   func(version *int32) Result
	cuDeviceGetCount     func(count *int32) Result
	cuDeviceGet          func(dev *int32, ordinal int32) Result
	cuDeviceGetName      func(name *byte, n int32, dev int32) Result
	cuDeviceTotalMem     func(bytes *uintptr, dev int32) Result
	cuDeviceGetAttribute func(v *int32, attr int32, dev int32) Result
	// Optional: drivers before CUDA 6.0 lack them, and errors then carry only the number.
	cuGetErrorName   func(code Result, s **byte) Result
	cuGetErrorString func(code Result, s **byte) Result
}

// Open loads the CUDA driver library, initialises it with cuInit(0) and lists the GPUs it sees:
// their names, memory and compute capability, with the driver's version.
//
// It never panics on a machine without CUDA. A library that cannot be loaded, or lacks a function,
// is reported as a *LoadError naming the file and the symbol; a driver that sees no GPU as an
// error wrapping ErrNoDevice; a failing call as a *CallError. In builds without a loader it
// returns ErrUnsupported.
func Open() (*Driver, error) {
	lib, _ := LibraryNamed(LibCUDA)
	l, err := load(lib)
	if err != nil {
		return nil, err
	}
	api, err := bindDriver(l)
	if err != nil {
		// cuInit has not run, so unloading is safe.
		dlclose(l.h)
		return nil, err
	}
	d := &Driver{Path: l.path}
	if err := api.call("cuInit", api.cuInit(0)); err != nil {
		var ce *CallError
		if errors.As(err, &ce) {
			switch ce.Code {
			case resultNoDevice:
				return nil, fmt.Errorf("%w: %s: %w", ErrNoDevice, l.path, err)
			case resultStubLibrary:
				return nil, fmt.Errorf("%s is the CUDA toolkit's stub library, not the driver (set %s to the driver's libcuda.so.1): %w", l.path, lib.Env, err)
			}
		}
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	var v int32
	if err := api.call("cuDriverGetVersion", api.cuDriverGetVersion(&v)); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	d.Version = int(v)
	var n int32
	if err := api.call("cuDeviceGetCount", api.cuDeviceGetCount(&n)); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: %s (driver %s) reports %d devices", ErrNoDevice, l.path, d.VersionString(), n)
	}
	for i := range int(n) {
		dev, err := api.device(i)
		if err != nil {
			return nil, fmt.Errorf("%s: device %d: %w", l.path, i, err)
		}
		d.Devices = append(d.Devices, dev)
	}
	return d, nil
}

// bindDriver looks up every function Open calls. A missing one is a *LoadError naming it.
func bindDriver(l *loaded) (*driverAPI, error) {
	api := &driverAPI{}
	required := []struct {
		name string
		fptr any
	}{
		{"cuInit", &api.cuInit},
		{"cuDriverGetVersion", &api.cuDriverGetVersion},
		{"cuDeviceGetCount", &api.cuDeviceGetCount},
		{"cuDeviceGet", &api.cuDeviceGet},
		{"cuDeviceGetName", &api.cuDeviceGetName},
		{"cuDeviceTotalMem_v2", &api.cuDeviceTotalMem},
		{"cuDeviceGetAttribute", &api.cuDeviceGetAttribute},
	}
	for _, f := range required {
		sym, err := dlsym(l.h, f.name)
		if err != nil {
			return nil, &LoadError{Library: l.lib, Env: l.env, Path: l.path, Tried: []string{l.path},
				Err: fmt.Errorf("%w %s (not %s, or too old)", ErrMissingSymbol, f.name, l.lib.What)}
		}
		bind(f.fptr, sym)
	}
	if sym, err := dlsym(l.h, "cuGetErrorName"); err == nil {
		bind(&api.cuGetErrorName, sym)
	}
	if sym, err := dlsym(l.h, "cuGetErrorString"); err == nil {
		bind(&api.cuGetErrorString, sym)
	}
	return api, nil
}

// device queries the GPU with the given ordinal.
func (api *driverAPI) device(ordinal int) (Device, error) {
	var dev int32
	if err := api.call("cuDeviceGet", api.cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return Device{}, err
	}
	// 256 bytes is what nvidia-smi and the CUDA samples use; names are far shorter.
	name := make([]byte, 256)
	if err := api.call("cuDeviceGetName", api.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
		return Device{}, err
	}
	var mem uintptr
	if err := api.call("cuDeviceTotalMem_v2", api.cuDeviceTotalMem(&mem, dev)); err != nil {
		return Device{}, err
	}
	var major, minor int32
	if err := api.call("cuDeviceGetAttribute", api.cuDeviceGetAttribute(&major, attrComputeCapabilityMajor, dev)); err != nil {
		return Device{}, err
	}
	if err := api.call("cuDeviceGetAttribute", api.cuDeviceGetAttribute(&minor, attrComputeCapabilityMinor, dev)); err != nil {
		return Device{}, err
	}
	return Device{Ordinal: ordinal, Name: cString(name), TotalMem: uint64(mem), Major: int(major), Minor: int(minor)}, nil
}

// call turns a CUresult into nil or a *CallError with the driver's name and text for it.
func (api *driverAPI) call(fn string, r Result) error {
	if r == resultSuccess {
		return nil
	}
	e := &CallError{Func: fn, Code: r}
	var p *byte
	if api.cuGetErrorName != nil && api.cuGetErrorName(r, &p) == resultSuccess {
		e.Name = cStringAt(p)
	}
	p = nil
	if api.cuGetErrorString != nil && api.cuGetErrorString(r, &p) == resultSuccess {
		e.Desc = cStringAt(p)
	}
	return e
}

// cString returns the text of a NUL-terminated C string held in b (all of b if it has no NUL).
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// maxCString bounds the driver's static error strings, so a bad pointer cannot run away.
const maxCString = 4096

// cStringAt copies the NUL-terminated C string at p, which the driver owns (its error texts are
// static), into Go memory.
func cStringAt(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for n < maxCString && *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
