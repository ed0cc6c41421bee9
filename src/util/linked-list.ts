/**
 * A link of an intrusive doubly-linked list. An item owns one node per list it can be in, made
 * once with it, so moving the item between lists allocates nothing and unlinking is O(1).
 */
export class ListNode<T> {
  readonly value: T
  prev: ListNode<T> | null = null
  next: ListNode<T> | null = null
  /** The list it is in, or null */
  list: LinkedList<T> | null = null

  constructor (value: T) {
    this.value = value
  }

  /** Takes the node out of whatever list holds it (nothing if none) */
  unlink (): void {
    this.list?.remove(this)
  }
}

/** A FIFO of nodes: append at the tail, take from anywhere, oldest at the head */
export class LinkedList<T> {
  head: ListNode<T> | null = null
  tail: ListNode<T> | null = null
  size = 0

  /** The value at the head, or undefined when empty */
  get first (): T | undefined {
    return this.head?.value
  }

  /** Appends the node at the tail, first taking it out of any list it is in */
  push (node: ListNode<T>): void {
    node.list?.remove(node)
    node.list = this
    node.prev = this.tail
    node.next = null
    if (this.tail === null) {
      this.head = node
    } else {
      this.tail.next = node
    }
    this.tail = node
    this.size++
  }

  /** Takes the node out; false when it is not in this list */
  remove (node: ListNode<T>): boolean {
    if (node.list !== this) {
      return false
    }
    if (node.prev === null) {
      this.head = node.next
    } else {
      node.prev.next = node.next
    }
    if (node.next === null) {
      this.tail = node.prev
    } else {
      node.next.prev = node.prev
    }
    node.list = node.prev = node.next = null
    this.size--
    return true
  }

  /** Moves the node to the tail (most recent); appends it if it is not in the list */
  moveToEnd (node: ListNode<T>): void {
    if (this.tail !== node) {
      this.push(node)
    }
  }

  /** Forgets every node (they are unlinked) */
  clear (): void {
    for (let node = this.head; node !== null;) {
      const next = node.next
      node.list = node.prev = node.next = null
      node = next
    }
    this.head = this.tail = null
    this.size = 0
  }

  /** The values head to tail. Removing the current value while iterating is safe. */
  * [Symbol.iterator] (): IterableIterator<T> {
    for (let node = this.head; node !== null;) {
      const next = node.next
      yield node.value
      node = next
    }
  }
}
