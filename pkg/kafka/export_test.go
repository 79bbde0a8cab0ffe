package kafka

import "strings"

// PauseFetches holds back the requests of the process's fetcher for brokers
// until resume is called, and reports how many readers have subscribed, so
// that a test can start many readers and count the requests their first
// fetch takes without depending on how fast each reader starts.
func PauseFetches(brokers []string) (subscribed func() int, resume func()) {
	fetchers.Lock()
	f := fetcherOf(brokers)
	f.mu.Lock()
	f.paused = true
	f.mu.Unlock()
	fetchers.Unlock()
	subscribed = func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.subs)
	}
	resume = func() {
		f.mu.Lock()
		f.paused = false
		f.mu.Unlock()
		f.poke()
	}
	return subscribed, resume
}

// FetcherRunning says whether the process has a fetcher for brokers.
func FetcherRunning(brokers []string) bool {
	fetchers.Lock()
	defer fetchers.Unlock()
	_, ok := fetchers.byBrokers[strings.Join(brokers, ",")]
	return ok
}
