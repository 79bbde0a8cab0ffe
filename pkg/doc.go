// Package pkg holds sluice's shared libraries; see its subpackages.
package pkg
