import test from "ava";
import fc from "fast-check";
import { candidates, searchSmallest } from "../../src/storm/shrink.js";
import { expandSteps, loadStorm, type Step } from "../../src/storm/index.js";
import { searchStorm } from "../helpers/storms.js";

// searchSmallest is the walk fast-check's shrinking made over our candidates,
// written out. The fast-check version it replaced, kept here to compare: the
// same lists must be judged in the same order, so shrinks find the same storms.
class StepListArbitrary extends fc.Arbitrary<Step[]> {
  constructor(private readonly start: Step[]) {
    super();
  }
  generate(): fc.Value<Step[]> {
    return new fc.Value(this.start, undefined);
  }
  canShrinkWithoutContext(value: unknown): value is Step[] {
    return Array.isArray(value);
  }
  shrink(value: Step[]): fc.Stream<fc.Value<Step[]>> {
    return new fc.Stream(candidates(value)).map((c) => new fc.Value(c, undefined));
  }
}

async function withFastCheck(steps: Step[], fails: (s: Step[]) => Promise<boolean>): Promise<void> {
  await fc.check(fc.asyncProperty(new StepListArbitrary(steps), async (c) => !(await fails(c))), { numRuns: 1, seed: 1, endOnFailure: false });
}

const steps = expandSteps(loadStorm(searchStorm()));

// Stand-ins for a storm run, each breaking on a different shape of list.
const predicates: Record<string, (s: Step[]) => boolean> = {
  "a hold of 2": (s) => s.some((x) => x.op === "hold" && x.count === 2),
  "a remove after traffic": (s) => s.some((x, i) => x.op === "remove" && s.slice(0, i).some((y) => y.op === "traffic")),
  "three adds": (s) => s.filter((x) => x.op === "add").length >= 3,
  "never": () => false,
  "always": () => true,
};

for (const [name, breaks] of Object.entries(predicates)) {
  test(`searchSmallest judges what fast-check's shrinking judged, in order: ${name}`, async (t) => {
    const walk = async (search: (s: Step[], f: (s: Step[]) => Promise<boolean>) => Promise<void>): Promise<string[]> => {
      const judged: string[] = [];
      await search(steps, async (s) => {
        judged.push(JSON.stringify(s));
        return breaks(s);
      });
      return judged;
    };
    const ours = await walk(searchSmallest);
    t.deepEqual(ours, await walk(withFastCheck));
    t.true(ours.length > 0);
  });
}
