// SIGTERM/SIGINT handling for servers: the signals are blocked in every
// thread and taken synchronously by the main thread, so no handler runs in
// an arbitrary thread and draining is ordinary code.
#ifndef ROOMSYNC_BASE_TERMINATION_H_
#define ROOMSYNC_BASE_TERMINATION_H_

namespace roomsync {

// Call in main() before any thread starts, so that every thread inherits
// the blocked mask.
void BlockTerminationSignals();

// Waits until SIGTERM or SIGINT arrives; returns its number.
int WaitForTerminationSignal();

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_TERMINATION_H_
