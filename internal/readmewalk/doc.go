// Package readmewalk holds the test that follows the README literally: it
// runs every command block marked <!-- walk --> in order, as a newcomer
// would type them, in a scratch copy of the repository.
package readmewalk
