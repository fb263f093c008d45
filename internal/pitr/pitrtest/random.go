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
// arrays ($push, with $each, $position, $slice and $sort: what $pop and $pull make too),
// and remove fields. The server may refuse some of them on some documents (a $push onto
// a number): a workload ignores those.
func RandomUpdate(rng *rand.Rand) bson.D {
	path := updatePaths[rng.IntN(len(updatePaths))]
	each := func(modifiers ...bson.E) bson.D {
		return bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: append(bson.D{{Key: "$each", Value: bson.A{RandomValue(rng, 1)}}}, modifiers...)}}}}
	}
	switch rng.IntN(10) {
	case 0:
		return bson.D{{Key: "$unset", Value: bson.D{{Key: path, Value: ""}}}}
	case 1:
		return bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int32(1)}}}}
	case 2:
		return bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: RandomValue(rng, 1)}}}}
	case 3: // as $pop of the last (positive) or the first (negative) elements
		keep := []int{1, 2, -1, -2}[rng.IntN(4)]
		return bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: keep}}}}}}
	case 4:
		return each(bson.E{Key: "$position", Value: rng.IntN(3)})
	case 5: // as $rename
		return bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: RandomValue(rng, 1)}}}, {Key: "$unset", Value: bson.D{{Key: "a", Value: ""}}}}
	case 6:
		return bson.D{{Key: "$set", Value: bson.D{{Key: "arr", Value: RandomValue(rng, 1)}, {Key: "m.x.y", Value: RandomValue(rng, 2)}}}}
	case 7:
		return each(bson.E{Key: "$slice", Value: 3})
	}
	return bson.D{{Key: "$set", Value: bson.D{{Key: path, Value: RandomValue(rng, 1)}}}}
}
