// Package cpudev is the CPU device: the first implementation of device.Device.
//
// Its memory is a host float32 arena per run; its kernels are runtime/kernels/cpu's, built once
// per node when a plan is compiled (packed convolution weights are kept per node and shared by
// the plans of every input shape), at the instruction-set level chosen once for the process
// (package isa); its stream is a pool of worker threads (cpu.Workers) that every kernel splits
// its work over. Lower is the one place that decides which CPU kernel runs an ONNX node, and says
// why when none does (the node then runs on its reference kernel).
package cpudev
