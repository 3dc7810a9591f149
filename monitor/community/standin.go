package community

// TEMPORARY: stand-ins for notify.Feed and notify.FeedEntry until they
// land; then these aliases become the real types and this file goes.

import "time"

type nFeed = feedStandIn
type nFeedEntry = feedEntryStandIn

type feedStandIn struct {
	ID, Title, Self string
	Updated         time.Time
	Entries         []feedEntryStandIn
}
type feedEntryStandIn struct {
	ID, Title, Text, Link string
	Updated               time.Time
}
