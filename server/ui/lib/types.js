// @ts-check
// The API's types, taken from the service's own zod schemas so that the
// dashboard and the service cannot disagree about a field without tsc noticing.
export {};

/** @typedef {import('../../schemas.js').Interface} Interface */
/** @typedef {import('../../schemas.js').Counters} Counters */
/** @typedef {import('../../schemas.js').Vm} Vm */
/** @typedef {import('../../schemas.js').VmState} VmState */
/** @typedef {import('../../schemas.js').Benchmark} Benchmark */
/** @typedef {import('../../schemas.js').BenchProgress} BenchProgress */
/** @typedef {import('zod').infer<typeof import('../../routes/system.js').SystemSchema>} SystemInfo */
/** @typedef {import('../../events.js').KnivEvent} KnivEvent */
/** @typedef {import('../../events.js').EventType} EventType */
/** @typedef {import('../../errors.js').ErrorBody} ErrorBody */
/** @typedef {import('../../errors.js').FieldIssue} FieldIssue */
