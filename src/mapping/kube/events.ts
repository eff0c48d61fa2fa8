import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import { describeKubeFailure } from './errors.js'

/** The object an Event is about, as kubectl describe finds it (by kind, namespace, name and uid). */
export interface InvolvedObject {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  /** Empty for cluster-scoped objects: their Events live in `default`, as kube-apiserver requires. */
  readonly namespace?: string | undefined
  readonly uid?: string | undefined
  readonly resourceVersion?: string | undefined
}

export type EventReason = 'InvalidMapping' | 'MappingApplied'

export interface EventRecorder {
  /** Records an Event in the background; never throws, never blocks the caller. */
  record(object: InvolvedObject, type: 'Normal' | 'Warning', reason: EventReason, message: string): void
}

export const EVENT_COMPONENT = 'kube-iam-auth'
/** kube-apiserver's limit for the note of new-style Events; kept for core/v1 messages too. */
const MAX_MESSAGE = 1024

/**
 * Kubernetes Events (core/v1, as client-go's recorder writes them, so `kubectl describe` shows them
 * under the object). The name is derived from the object, its version and the reason, so the
 * server pods of every control-plane node report one rejected edit once: the others' creates meet
 * AlreadyExists. A failure to write (no RBAC, API server away) is logged once per kind of failure.
 */
export function createEventRecorder(opts: {
  kubeConfig: KubeConfig
  log: Logger
  now?: () => Date
  instance?: string
}): EventRecorder {
  const api = opts.kubeConfig.makeApiClient(CoreV1Api)
  const now = opts.now ?? (() => new Date())
  const instance = opts.instance ?? hostname()
  const logged = new Set<string>()
  return {
    record(object, type, reason, message) {
      const namespace = object.namespace || 'default'
      const at = now()
      const digest = createHash('sha256')
        .update([object.kind, object.namespace, object.name, object.uid, object.resourceVersion, reason].join('\0'))
        .digest('hex')
        .slice(0, 16)
      const body: CoreV1Event = {
        metadata: { name: `${object.name}.${digest}`, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: object.name,
          ...(object.namespace ? { namespace: object.namespace } : {}),
          ...(object.uid ? { uid: object.uid } : {}),
          ...(object.resourceVersion ? { resourceVersion: object.resourceVersion } : {}),
        },
        type,
        reason,
        message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
        source: { component: EVENT_COMPONENT, host: instance },
        reportingComponent: EVENT_COMPONENT,
        reportingInstance: instance,
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      }
      api.createNamespacedEvent({ namespace, body }).then(
        () => undefined,
        (err: unknown) => {
          if ((err as { code?: unknown }).code === 409) return // another server pod reported it already
          const why = describeKubeFailure(err, opts.kubeConfig)
          if (logged.has(why)) return
          logged.add(why)
          opts.log.warn(
            { reason, object: `${object.kind}/${object.name}` },
            `could not write a Kubernetes Event: ${why}`,
          )
        },
      )
    },
  }
}
