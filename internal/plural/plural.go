// Package plural writes counts for messages: "1 step", "2 steps", "3 batches".
package plural

import "strconv"

// Count returns n and word, in its plural form when n != 1: word+"s" unless pluralForm gives it
// ("batch", "batches"; "class", "classes").
func Count(n int, word string, pluralForm ...string) string {
	if n == 1 {
		return "1 " + word
	}
	if len(pluralForm) > 0 {
		return strconv.Itoa(n) + " " + pluralForm[0]
	}
	return strconv.Itoa(n) + " " + word + "s"
}
