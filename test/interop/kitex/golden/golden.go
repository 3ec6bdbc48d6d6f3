// Package golden holds what both sides of the golden vectors agree on: the Everything value the
// calls carry (the same as test/77.kitex.test.ts's), and the frame files in testdata/:
// kitex-*.bin written by Kitex (cmd/golden), linkpoll-*.bin written by linkpoll (test/77).
package golden

import "github.com/linkpoll/interop/kitex/kitex_gen/test"

// Everything has every field set, extremes included.
func Everything() *test.Everything {
	return &test.Everything{
		Flag: true, Small: -128, Mid: -32768, Int32: -2147483648, Big: 9007199254740993, Ratio: -0.25,
		Text: "héllo, 世界", Blob: []byte{0, 1, 254, 255}, Inner: &test.Inner{S: "in", B: []byte("bee")},
		Nums: []int32{1, -2, 2147483647}, Tags: []string{"a", "b"},
		ByName: map[string]*test.Inner{"x": {S: "X"}},
		Color:  test.Color_BLUE, Matrix: [][]int64{{1, 2}, {}, {-9223372036854775808}},
		Nested: map[int32][]string{7: {"s"}},
	}
}
