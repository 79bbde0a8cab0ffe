// Command hello proves an image's binary runs: it prints who it runs as
// and its arguments.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("hello from the image %v\n", os.Args[1:])
}
