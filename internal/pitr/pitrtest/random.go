package pitrtest

import (
	"fmt"
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// RandomValue is a scalar, a small document or a small array (nested up to 3 deep).
func RandomValue(rng *rand.Rand, depth int) any {
	switch n := rng.IntN(6); {
	case n == 0 && depth < 3:
		d := bson.D{}
		for i := range rng.IntN(3) {
			d = append(d, bson.E{Key: fmt.Sprintf("k%d", i), Value: RandomValue(rng, depth+1)})
		}
		return d
	case n == 1 && depth < 3:
		a := bson.A{}
		for range rng.IntN(4) {
			a = append(a, RandomValue(rng, depth+1))
		}
		return a
	case n == 2:
		return rng.Int32N(100)
	case n == 3:
		return fmt.Sprintf("s%d", rng.IntN(10))
	case n == 4:
		return rng.Float64()
	}
	return nil
}

// updatePaths are the paths RandomUpdate touches: top-level and nested fields, array
// elements inside and past the end, and fields below them.
var updatePaths = []string{"a", "a.k0", "a.k1.k0", "arr", "arr.0", "arr.2", "arr.1.k0", "arr.5", "n", "m.x.y"}

// RandomUpdate is an update with operators that change values in place, grow and shrink
// arrays ($push, with $each, $position, $slice and $sort; $addToSet, $pull, $pullAll,
// $pop), compute ($inc, $mul, $min, $max, $bit), move ($rename) and remove fields, at
// plain paths and at every element of an array ($[]). The server may refuse some of
// them on some documents (a $push onto a number): a workload ignores those.
func RandomUpdate(rng *rand.Rand) bson.D {
	path := updatePaths[rng.IntN(len(updatePaths))]
	one := func(op, path string, v any) bson.D { return bson.D{{Key: op, Value: bson.D{{Key: path, Value: v}}}} }
	each := func(modifiers ...bson.E) bson.D {
		return one("$push", "arr", append(bson.D{{Key: "$each", Value: bson.A{RandomValue(rng, 1)}}}, modifiers...))
	}
	switch rng.IntN(22) {
	case 0:
		return one("$unset", path, "")
	case 1:
		return one("$inc", "n", int32(1))
	case 2:
		return one("$push", "arr", RandomValue(rng, 1))
	case 3: // as $pop of the last (positive) or the first (negative) elements
		keep := []int{1, 2, -1, -2}[rng.IntN(4)]
		return one("$push", "arr", bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: keep}})
	case 4:
		return each(bson.E{Key: "$position", Value: rng.IntN(3)})
	case 5: // as $rename
		return bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: RandomValue(rng, 1)}}}, {Key: "$unset", Value: bson.D{{Key: "a", Value: ""}}}}
	case 6:
		return bson.D{{Key: "$set", Value: bson.D{{Key: "arr", Value: RandomValue(rng, 1)}, {Key: "m.x.y", Value: RandomValue(rng, 2)}}}}
	case 7:
		return each(bson.E{Key: "$slice", Value: 3})
	case 8:
		return one("$addToSet", "arr", RandomValue(rng, 1))
	case 9:
		return one("$addToSet", "arr", bson.D{{Key: "$each", Value: bson.A{RandomValue(rng, 2), rng.Int32N(3)}}})
	case 10:
		return one("$pull", "arr", RandomValue(rng, 2))
	case 11:
		return one("$pull", "arr", bson.D{{Key: "$gte", Value: rng.Int32N(50)}})
	case 12:
		return one("$pullAll", "arr", bson.A{int32(1), "two", rng.Int32N(100)})
	case 13:
		return one("$pop", "arr", []int32{1, -1}[rng.IntN(2)])
	case 14:
		return one("$mul", "n", []any{int32(2), int64(3), 0.5}[rng.IntN(3)])
	case 15:
		return one([]string{"$min", "$max"}[rng.IntN(2)], "n", rng.Int32N(1000))
	case 16:
		return one("$rename", []string{"a", "a.k0", "m"}[rng.IntN(3)], []string{"b", "r", "m2.x"}[rng.IntN(3)])
	case 17:
		return one("$bit", "n", bson.D{{Key: []string{"and", "or", "xor"}[rng.IntN(3)], Value: rng.Int32N(64)}})
	case 18:
		return one("$set", "arr.$[]", RandomValue(rng, 2))
	case 19:
		return one("$inc", "arr.$[]", int32(1))
	}
	return one("$set", path, RandomValue(rng, 1))
}
