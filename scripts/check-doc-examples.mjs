#!/usr/bin/env node
// Fails (exit 1, listing them) when a public export of peerlink has no `@example` in its
// doc comment.
//
// It converts the project as `npm run docs` does (typedoc.json: the entry points
// `peerlink`, `peerlink/server` and `peerlink/testing`) and walks every exported class,
// function and variable, and the main options interfaces listed below. A class counts
// as documented by an example on the class comment; a function by one on any of its
// signatures; a variable or an interface by one on its own comment. Error classes
// (PeerlinkError's subclasses) share the example on PeerlinkError: each counts as
// documented when its comment links to it (`{@link PeerlinkError}`).
//
// Usage, from the project root (about 15 s):
//   node scripts/check-doc-examples.mjs                 the package's entry points
//   node scripts/check-doc-examples.mjs FILE.ts …       other entry points (tests use a
//                                                       fixture); the options interface
//                                                       list is not checked then
// Exit status: 0 all documented, 1 some are not, 2 typedoc could not convert.
import { Application, ReflectionKind, TSConfigReader, TypeDocReader } from 'typedoc'

/** Options interfaces a user writes by hand: each needs an example too. */
const REQUIRED_INTERFACES = [
  'PeerOptions',
  'ConnectOptions',
  'ListenOptions',
  'TunnelClientOptions',
  'StunServerOptions',
  'TurnServerOptions',
  'BeaconServerOptions',
  'TunnelServerOptions',
  'NatLabOptions',
]

/** Kinds whose every exported member needs an example. */
const CHECKED_KINDS = ReflectionKind.Class | ReflectionKind.Function | ReflectionKind.Variable

const entryPoints = process.argv.slice(2)
const custom = entryPoints.length > 0

function hasExample(comment) {
  return Boolean(comment?.blockTags?.some((tag) => tag.tag === '@example'))
}

/** Whether the class `reflection` derives from `PeerlinkError`. */
function derivesFromPeerlinkError(reflection) {
  let type = reflection.extendedTypes?.[0]
  for (let depth = 0; type !== undefined && depth < 10; depth++) {
    if (type.name === 'PeerlinkError') return true
    type = type.reflection?.extendedTypes?.[0]
  }
  return false
}

/** Whether a comment's summary links to `name` (`{@link name}`). */
function linksTo(comment, name) {
  return Boolean(comment?.summary?.some((part) => part.kind === 'inline-tag' && part.tag === '@link' && part.text.trim() === name))
}

function documented(reflection) {
  if (hasExample(reflection.comment)) return true
  if (reflection.kindOf(ReflectionKind.Class)) {
    // Error classes share the example on PeerlinkError; each must point to it.
    return derivesFromPeerlinkError(reflection) && linksTo(reflection.comment, 'PeerlinkError')
  }
  if (reflection.kindOf(ReflectionKind.Function)) {
    return (reflection.signatures ?? []).some((signature) => hasExample(signature.comment))
  }
  if (reflection.kindOf(ReflectionKind.Variable)) {
    // `export const f = (…) => …`: the example may sit on the arrow function's signature.
    const declaration = reflection.type?.type === 'reflection' ? reflection.type.declaration : undefined
    return (declaration?.signatures ?? []).some((signature) => hasExample(signature.comment))
  }
  return false
}

function where(reflection) {
  const source = reflection.sources?.[0] ?? reflection.signatures?.[0]?.sources?.[0]
  return source === undefined ? '' : ` (${source.fileName}:${source.line})`
}

const app = await Application.bootstrapWithPlugins(
  {
    logLevel: process.env.DOC_EXAMPLES_LOG ?? 'Error',
    disableSources: false, // for the file:line of each finding
    validation: { notExported: false, invalidLink: false, notDocumented: false },
    // Other entry points (a fixture under test/) are outside typedoc.json's program
    // (tsconfig.build.json): read tsconfig.json instead, and not typedoc.json at all.
    ...(custom ? { entryPoints, tsconfig: 'tsconfig.json' } : {}),
  },
  custom ? [new TSConfigReader()] : [new TypeDocReader(), new TSConfigReader()],
)
const project = await app.convert()
if (project === undefined) {
  console.error('check-doc-examples: typedoc could not convert the project (see the errors above)')
  process.exit(2)
}

const missing = []
const seenInterfaces = new Set()
let checked = 0

function walk(container, moduleName) {
  for (const child of container.children ?? []) {
    if (child.kindOf(ReflectionKind.Module | ReflectionKind.Namespace)) {
      walk(child, child.kindOf(ReflectionKind.Module) ? child.name : moduleName)
      continue
    }
    const requiredInterface = !custom && child.kindOf(ReflectionKind.Interface) && REQUIRED_INTERFACES.includes(child.name)
    if (requiredInterface) seenInterfaces.add(child.name)
    if (!child.kindOf(CHECKED_KINDS) && !requiredInterface) continue
    checked++
    if (!documented(child)) missing.push(`${moduleName}: ${ReflectionKind.singularString(child.kind)} ${child.name}${where(child)}`)
  }
}
walk(project, project.name)

if (!custom) {
  for (const name of REQUIRED_INTERFACES) {
    if (!seenInterfaces.has(name)) missing.push(`interface ${name} is not exported any more: update REQUIRED_INTERFACES in this script`)
  }
}

if (missing.length > 0) {
  console.error(`check-doc-examples: ${missing.length} of ${checked} public exports have no @example:`)
  for (const line of missing) console.error(`  ${line}`)
  process.exit(1)
}
console.log(`check-doc-examples: all ${checked} public classes, functions, variables and main options interfaces have an @example`)
