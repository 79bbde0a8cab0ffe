package batch

// Held is how many requests b has taken into the batch it has not sent yet,
// counted while it waits for a send slot.
func Held[T any](b *Batcher[T]) int64 { return b.held.Load() }
